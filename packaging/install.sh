#!/bin/sh
# Install this RRG Desk folder for the current user: a launcher in ~/.local/bin, the menu
# entry and the icon. Run from inside the unpacked dist/rrg-desk folder: ./install.sh
set -eu
here=$(cd "$(dirname "$0")" && pwd)
data=${XDG_DATA_HOME:-$HOME/.local/share}
mkdir -p "$HOME/.local/bin" "$data/applications" "$data/icons/hicolor/256x256/apps" "$data/icons/hicolor/scalable/apps"
ln -sf "$here/rrg-desk" "$HOME/.local/bin/rrg-desk"
icons="$here/_internal/resources/icons"
cp "$icons/rrg-desk-256.png" "$data/icons/hicolor/256x256/apps/rrg-desk.png"
cp "$icons/rrg-desk.svg" "$data/icons/hicolor/scalable/apps/rrg-desk.svg"
sed "s|^Exec=rrg-desk|Exec=$here/rrg-desk|" "$here/rrg-desk.desktop" > "$data/applications/rrg-desk.desktop"
command -v update-desktop-database >/dev/null 2>&1 && update-desktop-database "$data/applications" || true
echo "RRG Desk installed: run 'rrg-desk' or pick it in the applications menu ('rrg-desk --selftest' checks it)."
