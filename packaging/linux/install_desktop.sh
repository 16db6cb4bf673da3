#!/bin/sh
# Add TrackStudio to the desktop menu of the current user (no root needed).
#
#   packaging/linux/install_desktop.sh                      # `trackstudio` installed with pip/pipx (on PATH)
#   packaging/linux/install_desktop.sh /opt/trackstudio     # the PyInstaller one-folder bundle
set -eu
here=$(cd "$(dirname "$0")" && pwd)
data=${XDG_DATA_HOME:-$HOME/.local/share}
icon_src="$here/../../resources/icons/trackstudio.png"
exec_cmd=trackstudio
if [ $# -ge 1 ]; then  # a bundle folder: its executable and the icon it carries
    exec_cmd="$(cd "$1" && pwd)/trackstudio"
    icon_src="$(cd "$1" && pwd)/_internal/trackstudio_resources/icons/trackstudio.png"
elif ! [ -f "$icon_src" ]; then  # not a checkout: ask the Python that runs the installed `trackstudio`
    python=$(head -n 1 "$(command -v trackstudio)" | sed 's/^#!//')
    icon_src=$("$python" -c 'import trackstudio_resources as r; print(r.path("icons", "trackstudio.png"))')
fi
mkdir -p "$data/applications" "$data/icons/hicolor/256x256/apps"
cp "$icon_src" "$data/icons/hicolor/256x256/apps/trackstudio.png"
sed -e "s|^Exec=trackstudio|Exec=$exec_cmd|" -e "s|^TryExec=trackstudio|TryExec=$exec_cmd|" \
    "$here/trackstudio.desktop" > "$data/applications/trackstudio.desktop"
command -v update-desktop-database >/dev/null && update-desktop-database "$data/applications" || true
echo "installed $data/applications/trackstudio.desktop (Exec=$exec_cmd)"
