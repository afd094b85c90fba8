#!/bin/sh
# Build mepd_<version>_<arch>.deb: a self-contained virtualenv under /opt/mepd
# (Debian's aiomqtt/pysnmp are too old or missing), /usr/bin symlinks, the
# systemd units, sysusers/tmpfiles snippets and /etc/mepd/mepd.toml as a
# conffile.  No debhelper: the tree is staged by hand and packed by dpkg-deb,
# so the build needs no debian/ source tree and no root.
#
#   packaging/deb/build.sh [OUTDIR]        (default OUTDIR: dist/)
#
# Needs: python3.11-venv, python3.11-dev, gcc, pkg-config, librrd-dev, libsystemd-dev, libsqlite3-dev
# (rrdtool, systemd-python and mepd's C extensions build from source), dpkg-dev (dpkg-shlibdeps),
# binutils (strip) and PyPI (or a pip cache/wheelhouse) for the dependencies.
# PYTHON picks the interpreter the venv is made with (default
# /usr/bin/python3.11: the package then depends on Debian's python3.11).
set -eu

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
OUTDIR=${1:-$ROOT/dist}
PYTHON=${PYTHON:-/usr/bin/python3.11}
MAINTAINER=${MAINTAINER:-mepd maintainers <mepd@example.org>}
PREFIX=/opt/mepd

umask 022
mkdir -p "$OUTDIR"
OUTDIR=$(cd "$OUTDIR" && pwd)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/mepd-deb.XXXXXX")
trap 'rm -rf "$WORK"' EXIT INT TERM
STAGE=$WORK/root

VERSION=$(cd "$ROOT" && "$PYTHON" -c 'import mepd; print(mepd.__version__)')
ARCH=$(dpkg --print-architecture)
PYVER=$("$PYTHON" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
# Reproducible dates: the last commit's, else now.
SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git -C "$ROOT" log -1 --format=%ct 2>/dev/null || date +%s)}
export SOURCE_DATE_EPOCH
DEB=$OUTDIR/mepd_${VERSION}_${ARCH}.deb
echo "building $DEB"

# 1. The venv, installed from a copy of the sources so the checkout gets no
#    build/ or *.egg-info litter.
mkdir -p "$WORK/src"
cp -r "$ROOT/mepd" "$ROOT/setup.cfg" "$ROOT/setup.py" "$ROOT/pyproject.toml" "$ROOT/README.md" "$WORK/src/"
find "$WORK/src" \( -name __pycache__ -o -name '*.so' \) -prune -exec rm -rf {} +
"$PYTHON" -m venv "$STAGE$PREFIX"
"$STAGE$PREFIX/bin/python" -m pip install --quiet --disable-pip-version-check --no-compile \
    --no-warn-script-location "$WORK/src"
"$STAGE$PREFIX/bin/python" -m pip uninstall --quiet --yes pip setuptools
# The C extensions are optional for pip (no compiler: the pure Python path), not for the package.
for so in sources/syslog/_speedups store/logs/_rows; do
    if ! ls "$STAGE$PREFIX"/lib/python*/site-packages/mepd/$so*.so >/dev/null 2>&1; then
        echo "build.sh: mepd's C extension $so was not built (gcc, python$PYVER-dev, libsqlite3-dev installed?)" >&2
        exit 1
    fi
done

# 2. Trim the venv to what the service needs, and make it relocatable to
#    $PREFIX: the scripts' shebangs and pyvenv.cfg name the staging path.
#    No byte-code in the package (Debian's Python policy): postinst compiles
#    it in place and prerm removes it.  Of bin/, mepd's entry points and the
#    interpreter links are kept.
find "$STAGE$PREFIX" \( -name __pycache__ -o -name .DS_Store \) -prune -exec rm -rf {} +
find "$STAGE$PREFIX/bin" -type f ! -name mepd ! -name mepctl -delete
rm -rf "$STAGE$PREFIX/include"
find "$STAGE$PREFIX" -name direct_url.json -delete
sed -i "1s|^#!.*/bin/python[0-9.]*\$|#!$PREFIX/bin/python$PYVER|" "$STAGE$PREFIX/bin/mepd" "$STAGE$PREFIX/bin/mepctl"
sed -i "s|$STAGE||g" "$STAGE$PREFIX/pyvenv.cfg"
if grep -rIl "$STAGE" "$STAGE$PREFIX" >"$WORK/leftover"; then
    echo "build.sh: the staging path is still named in:" >&2
    cat "$WORK/leftover" >&2
    exit 1
fi
# Shared objects: no debug symbols (a tenth of the size), as dh_strip does.
find "$STAGE$PREFIX" -name '*.so*' -type f -exec strip --strip-unneeded \
    --remove-section=.comment --remove-section=.note {} +

# 3. The rest of the tree.
install -d "$STAGE/usr/bin" "$STAGE/lib/systemd/system" "$STAGE/usr/lib/sysusers.d" \
    "$STAGE/usr/lib/tmpfiles.d" "$STAGE/etc/mepd" "$STAGE/usr/share/doc/mepd/examples" \
    "$STAGE/usr/share/man/man1" "$STAGE/usr/share/man/man8" "$STAGE/usr/share/lintian/overrides"
ln -s "$PREFIX/bin/mepd" "$STAGE/usr/bin/mepd"
ln -s "$PREFIX/bin/mepctl" "$STAGE/usr/bin/mepctl"
for unit in mepd.service mepd.socket mepd-tcp.socket mepd-rrdcached.service; do
    install -m 0644 "$ROOT/units/$unit" "$STAGE/lib/systemd/system/$unit"
done
install -m 0644 "$ROOT/units/mepd.sysusers" "$STAGE/usr/lib/sysusers.d/mepd.conf"
install -m 0644 "$ROOT/units/mepd.tmpfiles" "$STAGE/usr/lib/tmpfiles.d/mepd.conf"
install -m 0644 "$ROOT/conf/mepd.toml" "$STAGE/etc/mepd/mepd.toml"
install -m 0644 "$ROOT/conf/mepd.toml" "$STAGE/usr/share/doc/mepd/examples/mepd.toml"
for f in "$ROOT"/conf/examples/*; do
    [ -f "$f" ] && install -m 0644 "$f" "$STAGE/usr/share/doc/mepd/examples/"
done
gzip -9n -c "$ROOT/README.md" >"$STAGE/usr/share/doc/mepd/README.md.gz"
gzip -9n -c "$HERE/man/mepd.8" >"$STAGE/usr/share/man/man8/mepd.8.gz"
gzip -9n -c "$HERE/man/mepctl.1" >"$STAGE/usr/share/man/man1/mepctl.1.gz"
install -m 0644 "$HERE/lintian-overrides" "$STAGE/usr/share/lintian/overrides/mepd"
COMMIT=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
{
    echo "mepd ($VERSION) unstable; urgency=medium"
    echo
    echo "  * Built from the mepd sources, commit $COMMIT."
    echo
    echo " -- $MAINTAINER  $(date -u -R -d "@$SOURCE_DATE_EPOCH")"
} | gzip -9n >"$STAGE/usr/share/doc/mepd/changelog.gz"
"$STAGE$PREFIX/bin/python" "$HERE/copyright.py" >"$STAGE/usr/share/doc/mepd/copyright"

# 4. Control data.  Depends: the interpreter the venv links to, and the
#    libraries its compiled modules need, as dpkg-shlibdeps finds them.
install -d "$STAGE/DEBIAN" "$WORK/debian"
printf 'Source: mepd\n\nPackage: mepd\nArchitecture: any\n' >"$WORK/debian/control"
find "$STAGE$PREFIX" -name '*.so*' -type f >"$WORK/objects"
SHLIBS=$(cd "$WORK" && xargs dpkg-shlibdeps -O --ignore-missing-info <"$WORK/objects" 2>/dev/null \
    | sed -n 's/^shlibs:Depends=//p')
PYDEP="python$PYVER"
case $PYTHON in /usr/bin/*) ;; *) PYDEP="" ;; esac
DEPENDS=$(echo "$PYDEP, systemd, init-system-helpers (>= 1.54), $SHLIBS" | sed 's/^, //; s/, $//')
for script in postinst prerm postrm; do
    install -m 0755 "$HERE/$script" "$STAGE/DEBIAN/$script"
done
echo /etc/mepd/mepd.toml >"$STAGE/DEBIAN/conffiles"
cat >"$STAGE/DEBIAN/control" <<EOF
Package: mepd
Version: $VERSION
Architecture: $ARCH
Maintainer: $MAINTAINER
Installed-Size: $(du -sk --exclude=DEBIAN "$STAGE" | cut -f1)
Depends: $DEPENDS
Recommends: rrdcached
Section: admin
Priority: optional
Homepage: https://example.org/mepd
Description: log and metrics collection daemon (syslog, journal, SNMP, RRD)
 mepd receives syslog over UDP, TCP and TLS, tails the systemd journal and
 log files, polls SNMP interface counters MRTG-style, stores logs in SQLite
 and metrics in RRD files, draws graphs, and raises incidents.  mepctl
 queries it over a local Unix socket.
 .
 This package ships its own Python environment under /opt/mepd.  The
 service runs unprivileged and receives port 514 by socket activation.
EOF
(cd "$STAGE" && find . -path ./DEBIAN -prune -o -type f -print | sed 's|^\./||' | LC_ALL=C sort \
    | xargs -d '\n' md5sum) >"$STAGE/DEBIAN/md5sums"
chmod 0644 "$STAGE/DEBIAN/md5sums" "$STAGE/DEBIAN/conffiles" "$STAGE/DEBIAN/control"
find "$STAGE" -newermt "@$SOURCE_DATE_EPOCH" -exec touch --no-dereference -d "@$SOURCE_DATE_EPOCH" {} +

dpkg-deb --root-owner-group -Zxz --build "$STAGE" "$DEB" >/dev/null
echo "$DEB"
