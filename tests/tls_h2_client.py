#!/usr/bin/python3
"""GET a URL over HTTP/2 over TLS with Python's ssl module and the h2 library
(h2.connection.H2Connection), the way a third-party client would.

Usage: tls_h2_client.py https://127.0.0.1:PORT/PATH
Prints "alpn", "version", "status" and "body" lines; exits 0 when a response
ended its stream and the TLS connection was closed with close_notify both
ways, 1 otherwise. Run with Debian's /usr/bin/python3 (python3-h2).
"""

import socket
import ssl
import sys
import urllib.parse

import h2.config
import h2.connection
import h2.events


def main():
    url = urllib.parse.urlsplit(sys.argv[1])
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # the server's certificate is self-signed
    context.set_alpn_protocols(["h2"])

    with socket.create_connection((url.hostname, url.port), timeout=10) as raw:
        tls = context.wrap_socket(raw, server_hostname="localhost")
        print("alpn", tls.selected_alpn_protocol())
        print("version", tls.version())

        conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
        conn.initiate_connection()
        stream = conn.get_next_available_stream_id()
        conn.send_headers(stream, [
            (":method", "GET"),
            (":scheme", "https"),
            (":authority", f"{url.hostname}:{url.port}"),
            (":path", url.path or "/"),
        ], end_stream=True)
        tls.sendall(conn.data_to_send())

        status, body, ended = None, b"", False
        while not ended:
            data = tls.recv(65536)
            if not data:
                break
            for event in conn.receive_data(data):
                if isinstance(event, h2.events.ResponseReceived):
                    status = dict(event.headers).get(b":status", b"").decode()
                elif isinstance(event, h2.events.DataReceived):
                    body += event.data
                    conn.acknowledge_received_data(event.flow_controlled_length, stream)
                elif isinstance(event, h2.events.StreamEnded):
                    ended = True
            tls.sendall(conn.data_to_send())

        # GOAWAY, then close_notify; unwrap() returns once the server's
        # close_notify arrived.
        conn.close_connection()
        tls.sendall(conn.data_to_send())
        tls.unwrap()
        print("closed", "close_notify")

    print("status", status)
    print("body", repr(body.decode(errors="replace")))
    return 0 if ended else 1


if __name__ == "__main__":
    sys.exit(main())
