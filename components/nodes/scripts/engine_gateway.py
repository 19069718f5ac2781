"""The Docker Engine API of an SSH host over mutual TLS, for the Pulumi Docker provider.

The gateway accepts TLS connections whose client certificate the stack's CA signed and splices each
one to the engine's unix socket; it leaves dockerd's own configuration alone (docs/vms.md says why).
Runs on the host as `python3 -c 'import sys; exec(sys.argv[1])' "<this text>" ACTION ARGS`:
  install PORT    PEMs on stdin (CA certificate, server certificate, server key): writes them and
                  this program into DIR and (re)starts the gateway on PORT, as a systemd service when
                  systemd runs and we are root, else as a detached process
  serve DIR PORT  the gateway itself
  remove          stops the gateway and deletes DIR
DIR is /etc/phoenix/engine-gateway as root, ~/.phoenix/engine-gateway otherwise (the user then needs
the docker group, which prepare gives). A failure prints `engine-gateway: HOST: reason`, exit 1.
"""
import os
import pwd
import re
import select
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time

ENGINE_SOCKET = os.environ.get("PHOENIX_ENGINE_SOCKET", "/var/run/docker.sock")  # tests: a fake engine
UNIT = "phoenix-engine-gateway"
UNIT_FILE = f"/etc/systemd/system/{UNIT}.service"
ROOT = os.geteuid() == 0
DIR = "/etc/phoenix/engine-gateway" if ROOT else os.path.expanduser("~/.phoenix/engine-gateway")
SYSTEMD = ROOT and os.path.isdir("/run/systemd/system")


def fail(reason):
    sys.exit(f"engine-gateway: {socket.gethostname()}: {reason}")


def relay(tls, engine):
    """Both directions of one connection. The TLS connection is used under a lock, never by two threads
    at once (OpenSSL does not allow it), and a half-close is passed on: `docker exec` and `attach`
    send close_notify after their input and read the answer after it."""
    lock = threading.Lock()

    def client_to_engine():
        while True:
            if not tls.pending():
                select.select([tls], [], [])
            with lock:
                tls.setblocking(False)
                try:
                    data = tls.recv(65536)
                except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
                    continue
                except OSError:
                    data = b""
                finally:
                    tls.setblocking(True)
            if not data:
                break
            engine.sendall(data)
        try:
            engine.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    threading.Thread(target=client_to_engine, daemon=True).start()
    try:
        while data := engine.recv(65536):
            with lock:
                tls.sendall(data)
    except OSError:
        pass
    with lock:
        tls.close()
    engine.close()


def handle(context, client):
    try:
        client.settimeout(15)  # a TLS handshake that hangs must not keep a thread
        tls = context.wrap_socket(client, server_side=True)
        tls.settimeout(None)
        engine = socket.socket(socket.AF_UNIX)
        engine.connect(ENGINE_SOCKET)
    except OSError:  # ssl.SSLError included: a client without a certificate of ours
        client.close()
        return
    relay(tls, engine)


def serve(directory, port):
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(os.path.join(directory, "cert.pem"), os.path.join(directory, "key.pem"))
    context.load_verify_locations(os.path.join(directory, "ca.pem"))
    context.verify_mode = ssl.CERT_REQUIRED  # only clients with a certificate of the stack's CA
    if socket.has_dualstack_ipv6():
        server = socket.create_server(("::", int(port)), family=socket.AF_INET6, dualstack_ipv6=True)
    else:
        server = socket.create_server(("0.0.0.0", int(port)))
    while True:
        client, _ = server.accept()
        threading.Thread(target=handle, args=(context, client), daemon=True).start()


def stop():
    if SYSTEMD and os.path.exists(UNIT_FILE):
        subprocess.run(["systemctl", "disable", "--now", UNIT], capture_output=True)
        os.remove(UNIT_FILE)
        subprocess.run(["systemctl", "daemon-reload"], capture_output=True)
    try:
        with open(os.path.join(DIR, "pid")) as f:
            os.kill(int(f.read()), signal.SIGTERM)
    except (OSError, ValueError):
        pass  # no detached gateway runs


def wait_listening(port):
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", int(port)), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    log = os.path.join(DIR, "log")
    tail = open(log).read().strip().splitlines()[-1:] if os.path.exists(log) else []
    fail(f"the gateway does not listen on port {port} after 10 s{': ' + tail[0] if tail else ''}")


def install(source, port):
    pems = [(m.group(1), m.group(0)) for m in
            re.finditer(r"-----BEGIN ([A-Z ]+)-----\n.*?-----END \1-----\n?", sys.stdin.read(), re.S)]
    if [kind for kind, _ in pems] != ["CERTIFICATE", "CERTIFICATE", "PRIVATE KEY"]:
        fail("install needs the CA certificate, the server certificate and its key on stdin")
    stop()
    os.makedirs(DIR, mode=0o700, exist_ok=True)
    os.chmod(DIR, 0o700)
    for name, (_, text) in zip(("ca.pem", "cert.pem", "key.pem"), pems):
        with open(os.open(os.path.join(DIR, name), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
            f.write(text)
    program = os.path.join(DIR, "gateway.py")
    with open(program, "w") as f:
        f.write(source)
    if not os.access(ENGINE_SOCKET, os.R_OK | os.W_OK):
        fail(f"user {pwd.getpwuid(os.geteuid()).pw_name} cannot use {ENGINE_SOCKET} (not in the docker group?)")
    command = [shutil.which("python3") or sys.executable, program, "serve", DIR, port]
    if SYSTEMD:
        with open(UNIT_FILE, "w") as f:
            f.write(f"[Unit]\nDescription=phoenix: the Docker Engine API over mutual TLS on port {port}\n"
                    f"After=docker.service\n\n[Service]\nExecStart={' '.join(command)}\nRestart=always\n\n"
                    "[Install]\nWantedBy=multi-user.target\n")
        for step in (["daemon-reload"], ["enable", "--now", UNIT]):
            done = subprocess.run(["systemctl", *step], capture_output=True, text=True)
            if done.returncode:
                fail(f"systemctl {' '.join(step)}: {done.stderr.strip()}")
    else:  # no systemd (or not root): a detached process, gone after a reboot until the next install
        with open(os.path.join(DIR, "log"), "w") as log:
            child = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                     start_new_session=True)
        with open(os.path.join(DIR, "pid"), "w") as f:
            f.write(str(child.pid))
    wait_listening(port)
    print(f"engine-gateway: {socket.gethostname()}: listening on port {port}")


def main(args, source):
    action = args[0] if args else ""
    if action == "install" and len(args) == 2:
        install(source, args[1])
    elif action == "serve" and len(args) == 3:
        serve(args[1], args[2])
    elif action == "remove":
        stop()
        shutil.rmtree(DIR, ignore_errors=True)
        try:
            os.rmdir(os.path.dirname(DIR))  # .../phoenix, when nothing else of ours is left there
        except OSError:
            pass
    else:
        fail(f"unknown action {action!r} (install PORT, serve DIR PORT, remove)")


if sys.argv[0] == "-c":  # python3 -c 'import sys; exec(sys.argv[1])' SOURCE ACTION ...
    main(sys.argv[2:], sys.argv[1])
else:  # the installed copy, run by its service
    main(sys.argv[1:], "")
