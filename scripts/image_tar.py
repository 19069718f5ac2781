#!/usr/bin/env python3
"""Write an image as a docker-archive tarball (the `docker save` format) without a Docker engine.

`docker load` (20.10 included) and containerd's `ctr images import` both read it. Layers are plain
tar files; `--file SRC=DEST` adds one more layer holding those files (mode kept, owner root, fixed
mtime, so that the same inputs give the same layer and image ID).

    image_tar.py OUT.tar --tag registry.k8s.io/pause:3.10.1 --file bin/pause=/pause --entrypoint '["/pause"]'
    image_tar.py OUT.tar --tag REPO:TAG --layer base.tar --file bin/flanneld=/opt/bin/flanneld ...
"""
from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import tarfile
import tempfile
from pathlib import Path

EPOCH = 0
CREATED = "1970-01-01T00:00:00Z"


def files_layer(pairs: list[str], out: Path) -> None:
    """A layer tar with each SRC at DEST and the directories above it."""
    with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as tar:
        dirs: set[str] = set()
        for pair in pairs:
            src, sep, dest = pair.partition("=")
            if not sep or not dest.startswith("/"):
                raise SystemExit(f"--file {pair!r}: expected SRC=/absolute/dest")
            parts = dest.strip("/").split("/")
            for i in range(1, len(parts)):
                d = "/".join(parts[:i])
                if d not in dirs:
                    dirs.add(d)
                    info = tarfile.TarInfo(d)
                    info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, EPOCH
                    tar.addfile(info)
            info = tar.gettarinfo(src, arcname="/".join(parts))
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            info.mtime = EPOCH
            with open(src, "rb") as f:
                tar.addfile(info, f)


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_archive(out: Path, tags: list[str], layers: list[Path], config: dict) -> str:
    """The docker-archive itself; returns the image ID (sha256 of the config)."""
    digests = [sha256_file(p) for p in layers]
    image_config = {
        "architecture": "amd64", "os": "linux", "created": CREATED, "config": config,
        "rootfs": {"type": "layers", "diff_ids": [f"sha256:{d}" for d in digests]},
        "history": [{"created": CREATED, "created_by": "scripts/image_tar.py"} for _ in layers],
    }
    blob = json.dumps(image_config, sort_keys=True).encode()
    image_id = hashlib.sha256(blob).hexdigest()
    manifest = [{"Config": f"{image_id}.json", "RepoTags": tags, "Layers": [f"{d}/layer.tar" for d in digests]}]
    tmp = out.with_name(out.name + ".tmp")
    with tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as tar:
        def add_bytes(name: str, data: bytes) -> None:
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(data), EPOCH
            tar.addfile(info, io.BytesIO(data))
        add_bytes(f"{image_id}.json", blob)
        for digest, layer in zip(digests, layers):
            tar.add(layer, arcname=f"{digest}/layer.tar", recursive=False)
        add_bytes("manifest.json", json.dumps(manifest).encode())
    os.replace(tmp, out)
    return image_id


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("out", type=Path)
    p.add_argument("--tag", action="append", required=True, help="REPO:TAG (repeatable)")
    p.add_argument("--layer", action="append", default=[], type=Path, help="a layer tar, bottom first")
    p.add_argument("--file", action="append", default=[], help="SRC=DEST for the top layer")
    p.add_argument("--entrypoint", type=json.loads)
    p.add_argument("--cmd", type=json.loads)
    p.add_argument("--env", action="append", default=["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"])
    p.add_argument("--user")
    a = p.parse_args()
    config = {"Env": a.env}
    for key, value in (("Entrypoint", a.entrypoint), ("Cmd", a.cmd), ("User", a.user)):
        if value is not None:
            config[key] = value
    with tempfile.TemporaryDirectory(dir=a.out.parent) as tmp:
        layers = list(a.layer)
        if a.file:
            top = Path(tmp) / "files.tar"
            files_layer(a.file, top)
            layers.append(top)
        if not layers:
            raise SystemExit("no layer: give --layer or --file")
        image_id = write_archive(a.out, a.tag, layers, config)
    print(f"{a.out}: {' '.join(a.tag)} sha256:{image_id}")


if __name__ == "__main__":
    main()
