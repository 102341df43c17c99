"""A keep-alive HTTP connection to a running `mosaic serve`, for the benchmarks' Python drivers."""
import http.client
import json


class Client:
    """One keep-alive connection to 127.0.0.1:PORT, opened again once if the server closed it."""

    def __init__(self, port):
        self.port = port
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def request(self, method, path, body=None):
        """Sends `body` (bytes or str, JSON) and returns (status, reply bytes)."""
        headers = {"Content-Type": "application/json"} if body is not None else {}
        for attempt in range(2):
            try:
                self.conn.request(method, path, body=body, headers=headers)
                r = self.conn.getresponse()
                return r.status, r.read()
            except (http.client.HTTPException, ConnectionError):
                if attempt == 1:
                    raise
                self.conn.close()
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)

    def json(self, method, path, body=None):
        """As request, with a JSON value for body and reply; RuntimeError naming the status beyond 2xx."""
        status, data = self.request(method, path, None if body is None else json.dumps(body))
        if status >= 300:
            raise RuntimeError("%s %s: %d %s" % (method, path, status, data[:300]))
        return json.loads(data)
