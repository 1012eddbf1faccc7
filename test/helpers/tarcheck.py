#!/usr/bin/env python3
"""Independent tar oracle for ferry's tests: Python's tarfile reads a tar and prints, per member, the
fields ferry's walkTar reports, as JSON on stdout.

usage: tarcheck.py FILE

PAX values are printed as hex of their raw bytes: tarfile decodes them with the surrogateescape
error handler, so encoding back the same way restores binary values (SCHILY.xattr.*) byte for byte.
"""
import json
import sys
import tarfile


def raw(value):
    return value.encode("utf-8", "surrogateescape")


def member(info):
    return {
        "name": info.name,
        "type": info.type.decode("latin1"),
        "mode": info.mode,
        "uid": info.uid,
        "gid": info.gid,
        "size": info.size,
        "mtime": info.mtime,
        "linkname": info.linkname,
        "uname": info.uname,
        "gname": info.gname,
        "devmajor": info.devmajor,
        "devminor": info.devminor,
        "pax": {k: raw(v).hex() for k, v in info.pax_headers.items()},
        "sparse": info.sparse is not None,
        "offset": info.offset,
        "offset_data": info.offset_data,
    }


def main(path):
    # "r:" = no compression sniffing: the file is read exactly as stored. errors default to
    # surrogateescape, which keeps undecodable bytes recoverable.
    with tarfile.open(path, "r:") as tf:
        members = [member(m) for m in tf.getmembers()]
        end = tf.offset
    json.dump({"members": members, "end": end}, sys.stdout)


if __name__ == "__main__":
    main(sys.argv[1])
