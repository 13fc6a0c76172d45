"""A bare HTTP/1.1 peer on a loopback address for the delivery transport's tests: it records
every connection and request (Host header, TLS server name) and answers as told — a status, a
redirect, a body that never ends, or nothing at all. Bare asyncio streams, so that what reaches
the socket is exactly what the client sent, and so that it can misbehave as no framework would.
"""

import asyncio
import datetime
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


@dataclass
class Request:
    line: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Peer:
    host: str
    port: int = 0
    answer: str = "ok"  # "ok", "redirect", "endless", "hang" or "slow"
    close: bool = False  # answer with Connection: close
    connections: int = 0
    requests: list[Request] = field(default_factory=list)
    server_names: list[str | None] = field(default_factory=list)  # TLS SNI, per handshake
    in_flight: int = 0
    most_in_flight: int = 0
    written: int = 0  # body bytes sent by "endless"
    finished: asyncio.Event = field(default_factory=asyncio.Event)  # "endless" saw the close

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while request := await read_request(reader):
                self.requests.append(request)
                if self.answer == "hang":  # until the client gives up and hangs up
                    await reader.read()
                    break
                if not await self.respond(writer):
                    break
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()
            with suppress(ConnectionError):
                await writer.wait_closed()

    async def respond(self, writer: asyncio.StreamWriter) -> bool:
        """Answers one request; False when the connection is to end."""
        if self.answer == "endless":
            await self.endless(writer)
            return False
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        if self.answer == "slow":
            await asyncio.sleep(0.1)
        self.in_flight -= 1
        status, extra = ("302 Found", f"location: http://{self.host}:{self.port}/moved\r\n") \
            if self.answer == "redirect" else ("200 OK", "")
        connection = "close" if self.close else "keep-alive"
        writer.write(f"HTTP/1.1 {status}\r\n{extra}content-length: 2\r\n"
                     f"connection: {connection}\r\n\r\nok".encode())
        await writer.drain()
        return not self.close

    async def endless(self, writer: asyncio.StreamWriter) -> None:
        """A 1 GiB answer, written as fast as the client reads it, until it hangs up."""
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 1073741824\r\n\r\n")
        chunk = b"x" * 65536
        try:
            while self.written < 1 << 30:
                writer.write(chunk)
                await writer.drain()
                self.written += len(chunk)
        except ConnectionError:
            pass
        finally:
            self.finished.set()


async def read_request(reader: asyncio.StreamReader) -> Request | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None
    line, *lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for entry in filter(None, lines):
        name, _, value = entry.partition(":")
        headers[name.strip().lower()] = value.strip()
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return Request(line, headers, body)


@asynccontextmanager
async def running(host: str = "127.0.0.1", port: int = 0,
                  tls: ssl.SSLContext | None = None) -> AsyncIterator[Peer]:
    peer = Peer(host)
    if tls is not None:
        tls.sni_callback = lambda _socket, name, _context: peer.server_names.append(name)
    server = await asyncio.start_server(peer.serve, host, port, ssl=tls)
    peer.port = server.sockets[0].getsockname()[1]
    try:
        yield peer
    finally:
        server.close()
        with suppress(TimeoutError):
            async with asyncio.timeout(2):
                await server.wait_closed()


@dataclass
class Certificates:
    """A CA of the test's own and a server certificate it signed for one name."""

    server: ssl.SSLContext  # the server's side: its certificate and key
    client: ssl.SSLContext  # the client's side: trusts the CA only


def certificates(name: str, directory: Path) -> Certificates:
    now = datetime.datetime.now(datetime.UTC)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "payhook test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(hours=1))
          .not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    leaf = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(ca_name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    (directory / "ca.pem").write_bytes(ca.public_bytes(pem))
    (directory / "server.pem").write_bytes(leaf.public_bytes(pem) + key.private_bytes(
        pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(directory / "server.pem")
    return Certificates(server, ssl.create_default_context(cafile=directory / "ca.pem"))
