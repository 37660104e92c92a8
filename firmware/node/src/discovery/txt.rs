//! The TXT record of a box: ours written, others' parsed strictly. Pure functions, no IO.

use shoal_core::wire::PROTOCOL_VERSION;
use shoal_core::NodeId;

use super::DiscoveryConfig;

/// Longest board name, in bytes: room for names like `raspberrypi-zero-2w` with margin, and far
/// below the 255 bytes a TXT string may hold.
pub(super) const BOARD_MAX_LEN: usize = 64;

/// The TXT record of this box.
pub(super) fn txt_records(config: &DiscoveryConfig) -> [(&'static str, String); 5] {
    [
        ("id", hex(&config.node_id.0)),
        ("v", PROTOCOL_VERSION.to_string()),
        ("http", config.http_port.to_string()),
        ("board", config.board.clone()),
        ("fp", hex(&config.key_fingerprint)),
    ]
}

/// What a record must carry to be one of ours.
#[derive(Clone, Copy, Debug)]
pub(super) struct Expected {
    pub(super) version: u8,
    pub(super) fingerprint: [u8; 4],
}

/// A TXT record that passed [`parse_txt`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct PeerTxt {
    pub(super) node_id: NodeId,
    pub(super) http_port: u16,
    pub(super) board: String,
}

/// Why a record was ignored; each maps to one counter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum TxtRejection {
    /// Another protocol version, whose other fields may not even follow our layout.
    Version(u8),
    /// Another deployment.
    ForeignKey([u8; 4]),
    /// `key` is missing, has no value, or its value is malformed.
    Malformed { key: &'static str },
}

/// Parses a TXT record given as (key, value) pairs; keys compare without case and only the first
/// occurrence of a key counts (RFC 6763 section 6.4). The version is checked first, then the
/// fingerprint, so records of other versions and deployments are told apart from broken ones.
pub(super) fn parse_txt<'a>(
    txt: impl IntoIterator<Item = (&'a str, Option<&'a [u8]>)>,
    expected: Expected,
) -> Result<PeerTxt, TxtRejection> {
    let mut fields: [Option<Option<&'a [u8]>>; 5] = [None; 5];
    for (key, value) in txt {
        if let Some(slot) = TXT_KEYS.iter().position(|k| k.eq_ignore_ascii_case(key)) {
            fields[slot].get_or_insert(value);
        }
    }
    let [id, v, http, board, fp] = fields;
    let field = |value: Option<Option<&'a [u8]>>, key| value.flatten().ok_or(TxtRejection::Malformed { key });
    let malformed = |key| TxtRejection::Malformed { key };

    let version = parse_decimal(field(v, "v")?).and_then(|v| u8::try_from(v).ok()).ok_or(malformed("v"))?;
    if version != expected.version {
        return Err(TxtRejection::Version(version));
    }
    let fingerprint = parse_hex::<4>(field(fp, "fp")?).ok_or(malformed("fp"))?;
    if fingerprint != expected.fingerprint {
        return Err(TxtRejection::ForeignKey(fingerprint));
    }
    Ok(PeerTxt {
        node_id: NodeId(parse_hex::<16>(field(id, "id")?).ok_or(malformed("id"))?),
        http_port: parse_decimal(field(http, "http")?)
            .and_then(|port| u16::try_from(port).ok())
            .ok_or(malformed("http"))?,
        board: parse_board(field(board, "board")?).ok_or(malformed("board"))?,
    })
}

/// The TXT keys, in the order `parse_txt` destructures them.
const TXT_KEYS: [&str; 5] = ["id", "v", "http", "board", "fp"];

/// Exactly `2 * N` lowercase hex digits.
fn parse_hex<const N: usize>(text: &[u8]) -> Option<[u8; N]> {
    if text.len() != 2 * N {
        return None;
    }
    let digit = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    let mut out = [0; N];
    for (byte, pair) in out.iter_mut().zip(text.chunks_exact(2)) {
        *byte = (digit(pair[0])? << 4) | digit(pair[1])?;
    }
    Some(out)
}

/// A decimal number of at most 5 digits without sign or leading zeros, as we write them.
fn parse_decimal(text: &[u8]) -> Option<u32> {
    let well_formed = !text.is_empty()
        && text.len() <= 5
        && text.iter().all(u8::is_ascii_digit)
        && (text[0] != b'0' || text.len() == 1);
    well_formed.then(|| text.iter().fold(0, |n, digit| n * 10 + u32::from(digit - b'0')))
}

/// 1 to `BOARD_MAX_LEN` bytes of UTF-8 without control characters.
pub(super) fn parse_board(text: &[u8]) -> Option<String> {
    let board = std::str::from_utf8(text).ok()?;
    let well_formed =
        !board.is_empty() && board.len() <= BOARD_MAX_LEN && !board.chars().any(char::is_control);
    well_formed.then(|| board.to_owned())
}

pub(super) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discovery::tests::{config, FP};

    const EXPECTED: Expected = Expected { version: PROTOCOL_VERSION, fingerprint: FP };

    /// Our own TXT record as owned pairs, with `key` replaced by `value` (`None`: removed).
    fn txt_with(key: &str, value: Option<Option<&str>>) -> Vec<(String, Option<Vec<u8>>)> {
        let mut txt: Vec<(String, Option<Vec<u8>>)> =
            txt_records(&config(1)).into_iter().map(|(k, v)| (k.to_owned(), Some(v.into_bytes()))).collect();
        txt.retain(|(k, _)| k != key);
        if let Some(value) = value {
            txt.push((key.to_owned(), value.map(|v| v.as_bytes().to_vec())));
        }
        txt
    }

    fn parse(txt: &[(String, Option<Vec<u8>>)]) -> Result<PeerTxt, TxtRejection> {
        parse_txt(txt.iter().map(|(k, v)| (k.as_str(), v.as_deref())), EXPECTED)
    }

    #[test]
    fn own_record_parses_back() {
        let txt = txt_with("none", None);
        assert_eq!(
            parse(&txt),
            Ok(PeerTxt { node_id: NodeId([1; 16]), http_port: 8080, board: "rpi4".into() })
        );
        let records = txt_records(&config(0xab));
        assert_eq!(records[0], ("id", "ab".repeat(16)));
        assert_eq!(records[4], ("fp", "deadbeef".to_owned()));
    }

    #[test]
    fn missing_or_valueless_fields_are_malformed() {
        for key in TXT_KEYS {
            let rejection = TxtRejection::Malformed { key };
            assert_eq!(parse(&txt_with(key, None)), Err(rejection), "{key} missing");
            assert_eq!(parse(&txt_with(key, Some(None))), Err(rejection), "{key}");
            assert_eq!(parse(&txt_with(key, Some(Some("")))), Err(rejection), "{key}");
        }
    }

    #[test]
    fn malformed_values_are_rejected() {
        let cases: &[(&str, &str)] = &[
            ("id", &"AB".repeat(16)),
            ("id", &"ab".repeat(15)),
            ("id", &"ab".repeat(17)),
            ("id", &"zz".repeat(16)),
            ("id", &format!("{}é", "a".repeat(30))),
            ("v", "01"),
            ("v", "+1"),
            ("v", "-1"),
            ("v", "256"),
            ("v", "1 "),
            ("v", "99999999999"),
            ("http", "65536"),
            ("http", "08080"),
            ("http", "80a"),
            ("http", "99999"),
            ("board", "rpi\n4"),
            ("board", &"b".repeat(BOARD_MAX_LEN + 1)),
            ("fp", "DEADBEEF"),
            ("fp", "deadbee"),
            ("fp", "deadbeef0"),
            ("fp", "deadbeeg"),
        ];
        for &(key, value) in cases {
            assert_eq!(
                parse(&txt_with(key, Some(Some(value)))),
                Err(TxtRejection::Malformed {
                    key: TXT_KEYS.iter().find(|k| **k == key).copied().unwrap_or("?")
                }),
                "{key}={value:?}"
            );
        }
        let invalid_utf8 = parse_txt(
            txt_with("board", None)
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_deref()))
                .chain([("board", Some(&b"\xff\xfe"[..]))]),
            EXPECTED,
        );
        assert_eq!(invalid_utf8, Err(TxtRejection::Malformed { key: "board" }));
    }

    #[test]
    fn boundary_values_are_accepted() {
        let ok = |key: &str, value: &str| parse(&txt_with(key, Some(Some(value))));
        assert_eq!(ok("http", "0").map(|t| t.http_port), Ok(0));
        assert_eq!(ok("http", "65535").map(|t| t.http_port), Ok(65535));
        let long = "b".repeat(BOARD_MAX_LEN);
        assert_eq!(ok("board", &long).map(|t| t.board), Ok(long.clone()));
        assert_eq!(ok("board", "Pi Zero 2 W — ü").map(|t| t.board), Ok("Pi Zero 2 W — ü".into()));
    }

    #[test]
    fn other_version_is_told_apart_even_with_other_fields_broken() {
        let mut txt = txt_with("v", Some(Some("9")));
        txt.retain(|(k, _)| k == "v");
        assert_eq!(parse(&txt), Err(TxtRejection::Version(9)));
        assert_eq!(parse(&txt_with("v", Some(Some("0")))), Err(TxtRejection::Version(0)));
    }

    #[test]
    fn other_fingerprint_is_a_foreign_key() {
        let mut txt = txt_with("fp", Some(Some("00000001")));
        txt.retain(|(k, _)| k == "fp" || k == "v");
        assert_eq!(parse(&txt), Err(TxtRejection::ForeignKey([0, 0, 0, 1])));
    }

    #[test]
    fn keys_ignore_case_first_occurrence_wins_unknown_keys_pass() {
        let mut txt: Vec<_> =
            txt_with("none", None).into_iter().map(|(k, v)| (k.to_uppercase(), v)).collect();
        txt.push(("board".into(), Some(b"second".to_vec())));
        txt.push(("future".into(), None));
        assert_eq!(parse(&txt).map(|t| t.board), Ok("rpi4".into()));
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        // A fixed xorshift stream: the same inputs on every run.
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut accepted = 0;
        for _ in 0..20_000 {
            let mut txt = txt_with("none", None);
            let victim = (next() % 5) as usize;
            let len = (next() % 40) as usize;
            let value: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            txt[victim].1 = (next() % 8 != 0).then_some(value);
            accepted += usize::from(parse(&txt).is_ok());
        }
        // Random bytes are almost never a valid field, and a valid one comes out unchanged.
        assert!(accepted < 200, "{accepted}");
    }
}
