#!/usr/bin/env bash
# Installs the real mail software that the end-to-end tests talk to, on Debian 12,
# as root. Safe to run again: every step checks first.
#
# - swaks, python3, openssl, opendkim and dovecot come from apt-get install; their
#   services do not start, because no init system runs here.
# - postfix and sendmail would replace the system MTA, so their packages are only
#   downloaded and unpacked into .peers/ in the repository (gitignored). The
#   libraries that Postfix needs at run time are installed with apt-get.
#
# Prints what it installed and exits non-zero when any step failed.
set -uo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
peers="$repo/.peers"
debs="$peers/debs"
failed=()

apt_packages=(swaks libnet-ssleay-perl python3 openssl opendkim opendkim-tools dovecot-core dovecot-lmtpd m4)
unpacked_packages=(postfix sendmail-bin sendmail-base sendmail-cf)
# Shared libraries that the unpacked Postfix binaries load (checked with ldd).
postfix_libraries=(libicu72 libpcre2-8-0 libdb5.3 libsasl2-2 libssl3 libnsl2)

export DEBIAN_FRONTEND=noninteractive

note() { printf 'install-peers: %s\n' "$*"; }
fail() { note "FAILED: $*"; failed+=("$*"); }

if [ "$(id -u)" -ne 0 ]; then
  note "must run as root (apt-get install and useradd need it)"
  exit 1
fi

# apt-get update when the package lists are missing or a wanted package is unknown.
apt_lists_ready() {
  apt-cache show postfix >/dev/null 2>&1 && apt-cache show swaks >/dev/null 2>&1
}
if ! apt_lists_ready; then
  note "running apt-get update"
  apt-get update -qq || fail "apt-get update"
fi

missing=()
for pkg in "${apt_packages[@]}" "${postfix_libraries[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'ok installed'; then
    missing+=("$pkg")
  fi
done
if [ "${#missing[@]}" -gt 0 ]; then
  note "apt-get install ${missing[*]}"
  apt-get install -y -qq --no-install-recommends "${missing[@]}" ||
    fail "apt-get install ${missing[*]}"
fi

mkdir -p "$debs"
for pkg in "${unpacked_packages[@]}"; do
  stamp="$peers/.unpacked-$pkg"
  if [ -f "$stamp" ]; then
    continue
  fi
  if ! ls "$debs/${pkg}"_*.deb >/dev/null 2>&1; then
    if ! (cd "$debs" && apt-get download -qq -o APT::Sandbox::User=root "$pkg"); then
      fail "apt-get download $pkg"
      continue
    fi
  fi
  deb="$(ls "$debs/${pkg}"_*.deb | head -n 1)"
  if dpkg -x "$deb" "$peers"; then
    touch "$stamp"
    note "unpacked $(basename "$deb") into .peers/"
  else
    fail "dpkg -x $deb"
  fi
done

if ! getent group postdrop >/dev/null; then
  groupadd --system postdrop || fail "groupadd postdrop"
fi
if ! getent passwd postfix >/dev/null; then
  useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin \
    postfix || fail "useradd postfix"
fi

# postqueue and postdrop are set-gid postdrop in a real install; without it
# "postfix start" prints a warning per file.
for tool in postqueue postdrop; do
  if [ -f "$peers/usr/sbin/$tool" ]; then
    chgrp postdrop "$peers/usr/sbin/$tool" && chmod 2755 "$peers/usr/sbin/$tool" ||
      fail "chmod $tool"
  fi
done

# Every library that the unpacked Postfix binaries need must resolve.
postfix_bin="$peers/usr/sbin/postfix"
if [ -x "$postfix_bin" ]; then
  export LD_LIBRARY_PATH="$peers/usr/lib/postfix:$peers/usr/lib/x86_64-linux-gnu"
  for bin in "$postfix_bin" "$peers"/usr/lib/postfix/sbin/*; do
    [ -f "$bin" ] && [ -x "$bin" ] || continue
    if ldd "$bin" 2>/dev/null | grep -q 'not found'; then
      fail "$(basename "$bin") misses $(ldd "$bin" | grep 'not found' | awk '{print $1}' | tr '\n' ' ')"
    fi
  done
else
  fail "postfix binary not found at $postfix_bin"
fi

note "installed:"
for cmd in swaks python3 openssl opendkim opendkim-genkey dovecot m4; do
  path="$(command -v "$cmd" || true)"
  printf '  %-16s %s\n' "$cmd" "${path:-MISSING}"
  [ -n "$path" ] || fail "$cmd not on PATH"
done
for rel in usr/sbin/postfix usr/lib/postfix/sbin/master usr/lib/postfix/sbin/smtpd \
  usr/libexec/sendmail/sendmail usr/share/sendmail/cf/m4/cf.m4; do
  if [ -e "$peers/$rel" ]; then
    printf '  %-16s %s\n' "$(basename "$rel")" ".peers/$rel"
  else
    printf '  %-16s %s\n' "$(basename "$rel")" MISSING
    fail ".peers/$rel missing"
  fi
done

if [ "${#failed[@]}" -gt 0 ]; then
  note "${#failed[@]} step(s) failed:"
  printf '  %s\n' "${failed[@]}"
  exit 1
fi
note "all peers present"
