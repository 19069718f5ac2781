"""Certificates of the Docker Engine gateway (mutual TLS), made on the Pulumi host with openssl.

Runs as `python3 -c "<this text>" engine-certs ACTION ARGS`:
  ca               -> JSON {"ca", "caKey", "cert", "key"}: a CA and the client certificate and key of
                      the Pulumi Docker provider
  server ADDRESS   {"ca", "caKey"} on stdin -> JSON {"cert", "key"}: the gateway's certificate for
                      ADDRESS (an IP address or a DNS name), signed by that CA
Keys touch the disk only inside a private temporary directory that is deleted before the program
ends; they leave it on stdout, which Pulumi keeps as a secret.
"""
import ipaddress
import json
import os
import secrets
import subprocess
import sys
import tempfile

DAYS = "3650"


def openssl(work, *args):
    done = subprocess.run(["openssl", *args], cwd=work, capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"engine-certs: openssl {args[0]} failed: {done.stderr.strip()}")


def read(work, name):
    with open(os.path.join(work, name)) as f:
        return f.read()


def write(work, name, text):
    with open(os.path.join(work, name), "w") as f:
        f.write(text)


def signed(work, name, subject, extensions):
    """A new P-256 key `name` and its certificate, signed by ca.pem/ca.key in `work`."""
    openssl(work, "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", f"{name}.key")
    openssl(work, "req", "-new", "-key", f"{name}.key", "-subj", subject, "-out", f"{name}.csr")
    write(work, f"{name}.ext", "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n" + extensions)
    openssl(work, "x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-days", DAYS,
            "-set_serial", "0x" + secrets.token_hex(16), "-extfile", f"{name}.ext", "-out", f"{name}.pem")
    return read(work, f"{name}.pem"), read(work, f"{name}.key")


def main(action, *args):
    os.umask(0o077)
    with tempfile.TemporaryDirectory(prefix="phoenix-certs-") as work:
        if action == "ca":
            openssl(work, "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", "ca.key")
            openssl(work, "req", "-x509", "-new", "-key", "ca.key", "-subj", "/CN=phoenix engine CA",
                    "-days", DAYS, "-out", "ca.pem")
            cert, key = signed(work, "client", "/CN=phoenix pulumi", "extendedKeyUsage=clientAuth\n")
            result = {"ca": read(work, "ca.pem"), "caKey": read(work, "ca.key"), "cert": cert, "key": key}
        elif action == "server" and len(args) == 1:
            ca = json.load(sys.stdin)
            write(work, "ca.pem", ca["ca"])
            write(work, "ca.key", ca["caKey"])
            try:
                san = f"IP:{ipaddress.ip_address(args[0])}"
            except ValueError:
                san = f"DNS:{args[0]}"
            cert, key = signed(work, "server", f"/CN={args[0]}",
                               f"extendedKeyUsage=serverAuth\nsubjectAltName={san}\n")
            result = {"cert": cert, "key": key}
        else:
            sys.exit(f"engine-certs: unknown action {action!r} (ca, server ADDRESS)")
    json.dump(result, sys.stdout)


main(*sys.argv[2:])
