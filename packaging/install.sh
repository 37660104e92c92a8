#!/bin/sh
# Installs a Shoal bundle (the directory this script is in) on a box, with or without systemd.
#
#   ./install.sh [--key FILE] [--root DIR] [--no-start]
#
#   --key FILE   the deployment's network key (made once, with `shoal keygen`, on the first box):
#                installed as /etc/shoal/network.key. Without it an existing key is kept, and a
#                box with none makes a new one: copy that file to every other box.
#   --root DIR   install below DIR instead of / (images, tests); nothing is started.
#   --no-start   install only.
#
# Prints every step. An existing /etc/shoal/shoal.toml is kept (the new default goes beside it as
# shoal.toml.new).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
root=
key=
start=1
while [ $# -gt 0 ]; do
    case "$1" in
        --key) key=${2:?--key needs a file}; shift 2 ;;
        --root) root=${2:?--root needs a directory}; start=; shift 2 ;;
        --no-start) start=; shift ;;
        -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
        *) echo "install.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done
if [ -z "$root" ] && [ "$(id -u)" != 0 ]; then
    echo "install.sh: run as root (or give --root DIR)" >&2
    exit 1
fi
if [ -n "$key" ] && [ ! -r "$key" ]; then
    echo "install.sh: cannot read the key file $key" >&2
    exit 1
fi

say() { echo "install.sh: $*"; }

# Check the bundle first: a truncated download must not half-install.
if command -v sha256sum >/dev/null; then
    (cd "$here" && sha256sum -c SHA256SUMS >/dev/null) || { echo "install.sh: SHA256SUMS does not match" >&2; exit 1; }
    say "checked SHA256SUMS"
fi

mkdir -p "$root/usr/bin" "$root/etc/shoal"
cp "$here/shoal" "$root/usr/bin/shoal.new" && chmod 0755 "$root/usr/bin/shoal.new"
mv -f "$root/usr/bin/shoal.new" "$root/usr/bin/shoal"
say "installed $root/usr/bin/shoal ($("$root/usr/bin/shoal" version 2>/dev/null || echo 'not runnable on this machine'))"

if [ -e "$root/etc/shoal/shoal.toml" ]; then
    cp "$here/shoal.toml" "$root/etc/shoal/shoal.toml.new"
    say "kept $root/etc/shoal/shoal.toml; the bundle's default is in shoal.toml.new"
else
    cp "$here/shoal.toml" "$root/etc/shoal/shoal.toml" && chmod 0644 "$root/etc/shoal/shoal.toml"
    say "installed $root/etc/shoal/shoal.toml"
fi

keyfile="$root/etc/shoal/network.key"
if [ -n "$key" ]; then
    cp "$key" "$keyfile.new" && chmod 0600 "$keyfile.new" && mv -f "$keyfile.new" "$keyfile"
    say "installed the network key from $key as $keyfile"
elif [ -e "$keyfile" ]; then
    say "kept the existing network key $keyfile"
else
    "$root/usr/bin/shoal" keygen --out "$keyfile"
    say "made a new network key $keyfile: this is the deployment's first box; copy the file to"
    say "every other box (./install.sh --key network.key there)"
fi

if [ -d /run/systemd/system ] && [ -z "$root" ]; then
    cp "$here/shoal.service" /etc/systemd/system/shoal.service
    say "installed /etc/systemd/system/shoal.service"
    systemctl daemon-reload
    if [ -n "$start" ]; then
        systemctl enable shoal.service
        systemctl restart shoal.service
        say "enabled and started shoal.service (journalctl -u shoal)"
    fi
else
    mkdir -p "$root/etc/init.d"
    cp "$here/init.d/shoal" "$root/etc/init.d/shoal" && chmod 0755 "$root/etc/init.d/shoal"
    say "installed $root/etc/init.d/shoal (link it into your runlevel, e.g. /etc/rc.d/S90shoal)"
    if [ -n "$start" ]; then
        /etc/init.d/shoal restart
        say "started shoal (log in /var/log/shoal.log)"
    fi
fi
