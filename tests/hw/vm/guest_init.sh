#!/bin/busybox sh
# PID 1 of the remoteio test VM (busybox, in the initramfs).
#
# It never offers a prompt: it assembles a root from the host's own /
# (read-only 9p lower + tmpfs upper), runs the one job the host wrote into
# the control folder, stores the job's exit status there and powers off.
# Any failure powers off *without* a status, which the host reports as a
# dead guest: a broken VM can never look like a passing test.
/bin/busybox --install -s /bin
export PATH=/bin

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev

CON=/dev/ttyS0
die() {
    echo "remoteio-vm guest: $*" >$CON
    poweroff -f
    sleep 30  # poweroff -f only returns if it failed; panic=-1 then ends us
    exit 1
}

while read -r m params; do
    # shellcheck disable=SC2086  # params: zero or more name=value words
    insmod "/lib/modules/$m" $params || die "insmod $m failed"
done </modules.list

P9="trans=virtio,version=9p2000.L,msize=262144"
mount -t 9p -o "$P9" ctl /ctl || die "cannot mount the control folder"
# Defines SHARE (absolute path), NONCE and DEADLINE (seconds).
. /ctl/config || die "cannot read /ctl/config"

# Backstop for a host that vanished without killing us.
( sleep "$DEADLINE"; echo "remoteio-vm guest: deadline of ${DEADLINE}s reached" >$CON; poweroff -f ) &

R=/mnt/root
# cache=loose: the host's / does not change under a test run, and caching
# makes Python's many stat()/open() calls on the venv far cheaper.
mount -t 9p -o "$P9,ro,cache=loose" hostroot /mnt/lower || die "cannot mount host /"
mount -t tmpfs -o mode=0755 upper /mnt/rw || die "tmpfs"
mkdir -p /mnt/rw/upper /mnt/rw/work
mount -t overlay -o lowerdir=/mnt/lower,upperdir=/mnt/rw/upper,workdir=/mnt/rw/work overlay $R \
    || die "cannot mount the overlay root"

mount -t proc proc $R/proc || die "proc"
mount -t sysfs sysfs $R/sys || die "sysfs"
mount -t configfs configfs $R/sys/kernel/config || die "configfs"
mount -t devtmpfs devtmpfs $R/dev || die "devtmpfs"
mkdir -p $R/dev/pts $R/dev/shm
mount -t devpts devpts $R/dev/pts || die "devpts"
mount -t tmpfs -o mode=1777 shm $R/dev/shm || die "shm"
# The host's /run (pid files, sockets) means nothing in here.
mount -t tmpfs -o mode=0755 run $R/run || die "run"
mkdir -p $R/run/remoteio-vm
mount -o bind /ctl $R/run/remoteio-vm || die "bind ctl"
# virtiofs, not 9p: lgpio creates a FIFO in its cwd and QEMU's 9p refuses
# special files. Same path as on the host so venvs and checkouts just work.
mkdir -p "$R$SHARE"
mount -t virtiofs share "$R$SHARE" || die "cannot mount the shared folder at $SHARE"
ip link set lo up || die "cannot bring lo up"

# Raw output: no \n -> \r\n translation, so the host gets the bytes as written.
stty -F $CON -opost -echo 2>/dev/null
echo "@@remoteio-vm-start:$NONCE@@" >$CON
env -i /bin/chroot $R /bin/sh /run/remoteio-vm/job.sh </dev/null >$CON 2>&1
rc=$?
echo "$rc" >/ctl/rc.tmp && mv /ctl/rc.tmp /ctl/rc
sync
printf '\n@@remoteio-vm-end:%s:%s@@\n' "$NONCE" "$rc" >$CON
poweroff -f
sleep 30
