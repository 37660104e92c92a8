//! What origins and TVs send is hostile until checked: the parsers of playlists, segments, URLs
//! and byte ranges must refuse garbage with an error, never panic, on any input.

use proptest::prelude::*;
use shoal::lineup::OriginUrl;
use shoal::origin::{container, playlist};

/// Playlist-like text: tags, attributes and URIs shuffled, truncated and repeated.
fn playlist_text() -> impl Strategy<Value = String> {
    let line = prop_oneof![
        Just("#EXTM3U".to_owned()),
        Just("#EXT-X-VERSION:7".to_owned()),
        (0u64..2000).prop_map(|d| format!("#EXT-X-TARGETDURATION:{d}")),
        any::<u64>().prop_map(|s| format!("#EXT-X-MEDIA-SEQUENCE:{s}")),
        (-5.0f64..1e6).prop_map(|d| format!("#EXTINF:{d},")),
        Just("#EXT-X-DISCONTINUITY".to_owned()),
        Just("#EXT-X-ENDLIST".to_owned()),
        "[a-z0-9./?=_-]{0,20}",
        (any::<u32>(), proptest::option::of(any::<u32>())).prop_map(|(l, o)| match o {
            Some(o) => format!("#EXT-X-BYTERANGE:{l}@{o}"),
            None => format!("#EXT-X-BYTERANGE:{l}"),
        }),
        "#EXT-X-MAP:URI=\"[a-z.]{0,8}\"(,BYTERANGE=\"[0-9@]{0,8}\")?",
        "#EXT-X-KEY:METHOD=(NONE|AES-128|SAMPLE-AES|X)(,URI=\"k\")?(,IV=0x[0-9a-f]{0,32})?",
        "#EXT-X-STREAM-INF:BANDWIDTH=[0-9]{0,12}(,RESOLUTION=[0-9]{0,4}x[0-9]{0,4})?",
        ".{0,40}",
    ];
    proptest::collection::vec(line, 0..40).prop_map(|lines| lines.join("\n"))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn playlists_never_panic(text in playlist_text(), cut in any::<prop::sample::Index>()) {
        let bytes = text.as_bytes();
        let _ = playlist::parse(bytes);
        let _ = playlist::parse(&bytes[..cut.index(bytes.len() + 1)]);
        if let Ok(playlist::Playlist::Media(media)) = playlist::parse(bytes) {
            // Whatever parses is numbered consecutively from the media sequence.
            for (i, s) in media.segments.iter().enumerate() {
                prop_assert_eq!(s.seq, media.media_sequence + i as u64);
                prop_assert!(!s.duration.is_zero());
            }
        }
    }

    #[test]
    fn random_bytes_are_neither_playlists_nor_media(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
        let _ = playlist::parse(&bytes);
        let _ = container::check_init(&bytes);
        if let Ok(container::Container::Ts) = container::check_segment(&bytes) {
            prop_assert!(bytes.len() % 188 == 0 && bytes.chunks(188).all(|p| p[0] == 0x47));
        }
    }

    #[test]
    fn urls_never_panic(base in "https?://[a-z0-9.:\\[\\]@]{0,20}(/[a-z0-9./?#%-]{0,30})?", reference in ".{0,60}") {
        if let Ok(url) = OriginUrl::parse(&base) {
            if let Ok(joined) = url.join(&reference) {
                prop_assert!(joined.path_and_query.starts_with('/'));
                prop_assert!(!joined.path_and_query.split('/').any(|s| s == ".."));
            }
        }
    }
}
