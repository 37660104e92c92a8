#!/usr/bin/env bash
# Makes the built-in test card: 10 s of ffmpeg's testsrc2 pattern with a 440 Hz tone, 320x180,
# H.264 baseline + AAC, cut into five 2 s MPEG-TS segments that each start with PAT, PMT and a
# keyframe (GOP = 2 s, no scene-cut keyframes). About 230 KB in all. Needs ffmpeg (Debian's 5.1).
set -euo pipefail
cd "$(dirname "$0")"
rm -f seg*.ts
ffmpeg -hide_banner -loglevel error \
    -f lavfi -i "testsrc2=size=320x180:rate=25" -f lavfi -i "sine=frequency=440:sample_rate=48000" -t 10 \
    -c:v libx264 -preset veryslow -profile:v baseline -pix_fmt yuv420p -b:v 140k -maxrate 160k -bufsize 320k \
    -g 50 -keyint_min 50 -sc_threshold 0 -force_key_frames "expr:gte(t,n_forced*2)" \
    -c:a aac -b:a 32k -ac 1 \
    -f segment -segment_time 2 -segment_format mpegts -segment_format_options mpegts_flags=+resend_headers \
    -reset_timestamps 0 "seg%d.ts"
ls -l seg*.ts
