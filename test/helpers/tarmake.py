#!/usr/bin/env python3
"""Writes test tars with Python's tarfile (an independent writer for ferry's codec tests).

usage: tarmake.py KIND OUT
  pax    PAX format: global header, binary SCHILY.xattr.* values, long names/links (>100, >255
         bytes), uid/gid 2**22, devices, fifo, fractional mtime, unicode names
  gnu    GNU format: the same members; long names via L/K, uid/gid 2**22 in base-256
  ustar  USTAR format: names split into prefix + name, short link targets
  huge   GNU and PAX members whose size (9 GiB) needs base-256 / a PAX size record; the data is
         left as a hole (the file is sparse, so it costs no disk)
  docker-huge  a legacy docker-archive with one ~2 GiB layer, sparse on disk (prints its facts)
"""
import io
import sys
import tarfile

# A security.capability v2 value (cap_net_bind_service): NUL and high bytes must survive.
CAPABILITY = bytes.fromhex("0100000200040000000000000000000000000000")
# Bytes that are not UTF-8, plus a newline and '=' that a PAX record value may legally hold.
ODD = b"\xff\xfe\n=\x00tail"
DIR100 = "d" * 60
LONG100 = f"{DIR100}/{DIR100}/over-100.txt"
LONG255 = "/".join([DIR100] * 5) + "/over-255.txt"
LONG_TARGET = "/".join(["t" * 60] * 3) + "/target"
MTIME = 1600000000.25


def esc(raw):
    # tarfile takes PAX values as str; surrogateescape carries arbitrary bytes through.
    return raw.decode("utf-8", "surrogateescape")


def info(name, **kw):
    t = tarfile.TarInfo(name)
    t.mtime = kw.pop("mtime", 1600000000)
    t.mode = kw.pop("mode", 0o644)
    for k, v in kw.items():
        setattr(t, k, v)
    return t


def add_file(tf, name, data, **kw):
    t = info(name, size=len(data), **kw)
    tf.addfile(t, io.BytesIO(data))


def members(tf, fmt):
    add_file(tf, "plain.txt", b"plain\n", uname="alice", gname="staff", uid=1000, gid=1000)
    tf.addfile(info("dir/", type=tarfile.DIRTYPE, mode=0o755))
    add_file(tf, LONG100, b"100\n")
    add_file(tf, LONG255, b"255\n")
    add_file(tf, "unicode-ünï-中文-🚢.txt", b"u\n")
    add_file(tf, "bigid.txt", b"big\n", uid=2**22, gid=2**22 + 1)
    tf.addfile(info("sym-long", type=tarfile.SYMTYPE, linkname=LONG_TARGET, mode=0o777))
    tf.addfile(info("hard-long", type=tarfile.LNKTYPE, linkname=LONG255))
    tf.addfile(info("dev/null", type=tarfile.CHRTYPE, devmajor=1, devminor=3, mode=0o666))
    tf.addfile(info("dev/loop0", type=tarfile.BLKTYPE, devmajor=7, devminor=0, mode=0o660))
    tf.addfile(info("fifo", type=tarfile.FIFOTYPE))
    if fmt == tarfile.PAX_FORMAT:
        t = info("xattrs.bin", size=3, mtime=MTIME)
        t.pax_headers = {
            "SCHILY.xattr.security.capability": esc(CAPABILITY),
            "SCHILY.xattr.user.odd": esc(ODD),
            "SCHILY.xattr.user.text": "hello",
        }
        tf.addfile(t, io.BytesIO(b"abc"))


def tar_header(name, size, fmt=tarfile.USTAR_FORMAT):
    return info(name, size=size).tobuf(fmt, "utf-8", "surrogateescape")


def docker_huge(out):
    """A legacy docker-archive whose one layer is ~2 GiB, almost all of it a hole in the file. The
    layer is a real tar (one 2 GiB + 4 KiB file of zeros); its diffID in the config is NOT its sha256
    (hashing 2 GiB would be slow), which inspect cannot notice and verify would."""
    import hashlib
    import json
    big = 2**31 + 4096
    layer_size = 512 + big + 1024  # header, data (a multiple of 512), end-of-archive marker
    diff_id = "sha256:" + hashlib.sha256(b"not the real diffID").hexdigest()
    config = json.dumps({
        "architecture": "amd64", "os": "linux", "created": "2024-01-01T00:00:00Z",
        "config": {"Cmd": ["/big.bin"]},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created": "2024-01-01T00:00:00Z", "created_by": "huge layer"}],
    }, separators=(",", ":")).encode()
    config_name = hashlib.sha256(config).hexdigest() + ".json"
    manifest = json.dumps([{"Config": config_name, "RepoTags": ["huge:1"], "Layers": ["0" * 64 + "/layer.tar"]}]).encode() + b"\n"
    with open(out, "wb") as f:
        f.write(tar_header("0" * 64 + "/layer.tar", layer_size))
        f.write(tar_header("big.bin", big))
        f.seek(big, io.SEEK_CUR)  # the layer's file data: a hole
        f.write(b"\0" * 1024)    # the layer's end-of-archive marker
        for name, data in ((config_name, config), ("manifest.json", manifest)):
            f.write(tar_header(name, len(data)))
            f.write(data + b"\0" * (-len(data) % 512))
        f.write(b"\0" * 1024)
    print(json.dumps({"layerSize": layer_size, "diffId": diff_id, "configDigest": "sha256:" + config_name[:-5]}))


def main(kind, out):
    if kind == "pax":
        with tarfile.open(out, "w", format=tarfile.PAX_FORMAT, pax_headers={"comment": "global record"}) as tf:
            members(tf, tarfile.PAX_FORMAT)
    elif kind == "gnu":
        with tarfile.open(out, "w", format=tarfile.GNU_FORMAT) as tf:
            members(tf, tarfile.GNU_FORMAT)
    elif kind == "ustar":
        with tarfile.open(out, "w", format=tarfile.USTAR_FORMAT) as tf:
            add_file(tf, LONG100, b"split\n")
            add_file(tf, "p" * 150 + "/" + "n" * 99, b"max\n")
            tf.addfile(info("link", type=tarfile.SYMTYPE, linkname="plain.txt"))
    elif kind == "huge":
        size = 9 * 1024**3
        with open(out, "wb") as f:
            for fmt, name in ((tarfile.GNU_FORMAT, "huge-gnu.bin"), (tarfile.PAX_FORMAT, "huge-pax.bin")):
                t = info(name, size=size)
                f.write(t.tobuf(fmt, "utf-8", "surrogateescape"))
                f.seek(size, io.SEEK_CUR)  # a hole, not written bytes
            f.write(info("after.txt", size=0).tobuf(tarfile.USTAR_FORMAT, "utf-8", "surrogateescape"))
            f.write(b"\0" * 1024)
    elif kind == "docker-huge":
        docker_huge(out)
    else:
        raise SystemExit(f"unknown kind {kind}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
