"""sequin-proxy in front of a synced Stripe account, driven over raw HTTP:
CRUD with the database updated before the reply, a refusal changing
nothing, which role a credential acts as (and the 403s), every error the
proxy itself answers (404, 403, 405, 413, 502, 504, 503, slow clients), a
failed local apply still returning the API's reply, the shared rate limit
with priority over a backfill, bounded concurrency, and many clients at
once."""
import base64
import http.client
import json
import socket
import threading
import time
import urllib.parse

from common import MOCK, Proxy, check, drop, mock, psql, run, wait_for

NAME, ACCOUNT = "app_proxy", "sk_test_app_proxy"
RATE, RATE_ACCOUNT = "app_proxy_rate", "sk_test_app_proxy_rate"
DOWN = "app_proxy_down"
TOKENS = {"alice": "tok_alice_5b1c0f", "bob": "tok_bob_77a2e9", "carol": "tok_carol_0c3d41"}


def setup():
    for name in (NAME, RATE, DOWN):
        drop(name)
    mock("POST", "/_admin/reset", ACCOUNT)
    mock("POST", "/_admin/stripe/customers/seed?count=3", ACCOUNT)
    roles = "".join(f"""
        IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'app_proxy_{r}') THEN CREATE ROLE app_proxy_{r}; END IF;"""
                    for r in TOKENS)
    psql(f"DO $$ BEGIN {roles} END $$")
    # The server's owner syncs with the account's key; alice, bob and carol
    # hold it too (one account per server), and each a proxy_token of
    # their own, which is what their applications present.
    mappings = "".join(f"""
        CREATE USER MAPPING FOR app_proxy_{r} SERVER {NAME} OPTIONS (api_key '{ACCOUNT}', proxy_token '{t}');"""
                       for r, t in TOKENS.items())
    psql(f"""CREATE SERVER {NAME} FOREIGN DATA WRAPPER sequin_fdw
               OPTIONS (provider 'stripe', base_url '{MOCK}', poll_interval '1h', timeout '1s');
             CREATE USER MAPPING FOR CURRENT_USER SERVER {NAME} OPTIONS (api_key '{ACCOUNT}');
             {mappings}
             GRANT USAGE ON FOREIGN SERVER {NAME} TO app_proxy_alice, app_proxy_bob;
             CREATE SCHEMA {NAME};
             IMPORT FOREIGN SCHEMA stripe LIMIT TO (customers) FROM SERVER {NAME} INTO {NAME};
             GRANT USAGE ON SCHEMA {NAME} TO app_proxy_alice, app_proxy_bob;
             GRANT SELECT, INSERT, UPDATE, DELETE ON {NAME}.customers TO app_proxy_alice;
             GRANT SELECT ON {NAME}.customers TO app_proxy_bob;""")
    wait_for(lambda: psql(f"SELECT phase = 'incremental' FROM sequin.sync_status WHERE server = '{NAME}'") == "t", 10)
    # From here on the table changes only through the proxy.
    psql(f"SELECT sequin.pause('{NAME}')")


def call(proxy, method, path, body=None, token=TOKENS["alice"], headers=None, server=NAME, database=None):
    """One request through the proxy: (status, headers, body bytes)."""
    url = urllib.parse.urlsplit(proxy.url)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    sent = dict(headers or {})
    if token is not None:
        sent["Authorization"] = f"Bearer {token}"
    if isinstance(body, dict):
        body = urllib.parse.urlencode(body)
        sent["Content-Type"] = "application/x-www-form-urlencoded"
    database = database or proxy.database
    conn.request(method, f"/{database}/{server}{path}" if not path.startswith("//") else path[1:], body=body, headers=sent)
    reply = conn.getresponse()
    out = (reply.status, {k.lower(): v for k, v in reply.getheaders()}, reply.read())
    conn.close()
    return out


def proxy_error(reply):
    """The proxy's own error body, or None when the body is not one."""
    try:
        error = json.loads(reply[2])["error"]
        return error if error.get("source") == "proxy" else None
    except (ValueError, KeyError, TypeError):
        return None


def row(sql):
    return psql(sql)


def crud(proxy):
    status, headers, body = call(proxy, "POST", "/v1/customers", {"email": "ada@example.com", "name": "Ada",
                                                                   "metadata[plan]": "pro"})
    created = json.loads(body)
    check("POST through the proxy: the API's status, headers and body", status == 200
          and created["email"] == "ada@example.com" and headers.get("request-id", "").startswith("req_")
          and headers.get("content-type", "").startswith("application/json"), (status, body[:200]))
    # The sync is paused: what the table shows came with the reply.
    check("the new customer is in the table when the reply arrives",
          row(f"SELECT name || ' ' || (metadata->>'plan') FROM {NAME}.customers WHERE id = '{created['id']}'") == "Ada pro")
    upstream = mock("GET", f"/_admin/stripe/customers/{created['id']}", ACCOUNT)
    check("the body is the API's own (same object as the API holds)", created["id"] == upstream["id"]
          and created["created"] == upstream["created"])
    status, _, _ = call(proxy, "POST", f"/v1/customers/{created['id']}", {"name": "Ada L."})
    check("an update is in the table when its reply arrives",
          status == 200 and row(f"SELECT name FROM {NAME}.customers WHERE id = '{created['id']}'") == "Ada L.")
    status, _, body = call(proxy, "DELETE", f"/v1/customers/{created['id']}")
    check("a delete marks the row deleted when its reply arrives", status == 200 and json.loads(body)["deleted"]
          and row(f"SELECT deleted FROM {NAME}.customers WHERE id = '{created['id']}'") == "t")
    status, _, body = call(proxy, "GET", "/v1/customers?limit=2")
    check("a GET with a query string passes through", status == 200 and len(json.loads(body)["data"]) == 2, status)
    basic = base64.b64encode(f"{TOKENS['alice']}:".encode()).decode()
    status, _, _ = call(proxy, "GET", "/v1/customers?limit=1", token=None, headers={"Authorization": f"Basic {basic}"})
    check("the token as a Basic user name (curl -u tok:) authenticates too", status == 200, status)

    before = row(f"SELECT count(*) FROM {NAME}.customers")
    status, _, body = call(proxy, "POST", "/v1/customers", {"email": "not-an-email"})
    error = json.loads(body).get("error", {})
    check("an API refusal comes back as the API sent it (not the proxy's)",
          status == 400 and error.get("type") == "invalid_request_error" and "source" not in error, (status, body))
    check("a refusal changes nothing locally", row(f"SELECT count(*) FROM {NAME}.customers") == before)


def roles(proxy):
    status, _, body = call(proxy, "POST", "/v1/customers", {"email": "bob@example.com"}, token=TOKENS["bob"])
    bob = json.loads(body)
    check("bob's token acts as bob: the API call is his to make", status == 200 and bob["email"] == "bob@example.com")
    check("bob may not write the table, so the proxy did not write it for him",
          row(f"SELECT count(*) FROM {NAME}.customers WHERE id = '{bob['id']}'") == "0")
    status, _, body = call(proxy, "GET", "/v1/customers?limit=1", token=TOKENS["carol"])
    error = proxy_error((status, None, body))
    check("carol's token acts as carol, who lacks USAGE on the server: 403 from the proxy",
          status == 403 and error and error.get("sqlstate") == "42501", (status, body))
    for what, token in [("a wrong token", "tok_nobody"), ("the account key several roles hold", ACCOUNT), ("no credential", None)]:
        reply = call(proxy, "GET", "/v1/customers?limit=1", token=token)
        check(f"{what}: 403 from the proxy", reply[0] == 403 and proxy_error(reply), reply)
    # The tokens never reach the API: it sees the mapping's key.
    recent = mock("GET", "/_admin/requests/recent?limit=20", ACCOUNT)
    check("no proxy token reaches the API", not any(t in json.dumps(recent) for t in TOKENS.values()))


def proxy_errors(proxy):
    expected = [
        ("a path without a server", "GET", "//app/", 404),
        ("an unknown server", "GET", "/v1/customers", 404, {"server": "no_such_server"}),
        ("an unknown database", "GET", "/v1/customers", 404, {"database": "no_such_database"}),
        ("a method APIs do not take", "TRACE", "/v1/customers", 405),
    ]
    for what, method, path, want, *extra in expected:
        reply = call(proxy, method, path, **(extra[0] if extra else {}))
        error = proxy_error(reply)
        check(f"{what}: {want} from the proxy", reply[0] == want and error and error.get("message"), reply)
    # The API cannot be reached: a bad gateway.
    psql(f"""CREATE SERVER {DOWN} FOREIGN DATA WRAPPER sequin_fdw
               OPTIONS (provider 'stripe', base_url 'http://127.0.0.1:9', timeout '1s');
             CREATE USER MAPPING FOR CURRENT_USER SERVER {DOWN} OPTIONS (api_key '{ACCOUNT}');
             CREATE USER MAPPING FOR app_proxy_alice SERVER {DOWN} OPTIONS (api_key '{ACCOUNT}', proxy_token 'tok_down');
             GRANT USAGE ON FOREIGN SERVER {DOWN} TO app_proxy_alice""")
    reply = call(proxy, "GET", "/v1/customers", server=DOWN, token="tok_down")
    check("an API that cannot be reached: 502 from the proxy", reply[0] == 502 and proxy_error(reply), reply)
    # The API does not answer within the server's timeout (1 s): 504.
    mock("POST", "/_admin/faults", ACCOUNT, {"account": ACCOUNT, "method": "POST", "kind": "latency",
                                             "latency_ms": 3000, "count": 1})
    started = time.monotonic()
    reply = call(proxy, "POST", "/v1/customers", {"email": "slow@example.com"})
    check("an API that does not answer in time: 504 from the proxy, within the timeout",
          reply[0] == 504 and proxy_error(reply) and time.monotonic() - started < 2.5, reply)


def database_behind():
    """The API accepts, the local apply cannot take its lock in time: the
    client still gets the API's reply, marked, and the sync brings the row."""
    psql(f"ALTER ROLE {proxy_login()} SET lock_timeout = '300ms'")
    # Its connections start with the setting.
    proxy = Proxy()
    shadow = row(f"SELECT shadow_table FROM sequin.collections WHERE foreign_table = '{NAME}.customers'::regclass")
    import subprocess
    locker = subprocess.Popen(["psql", "-XAtq", "-c", f"BEGIN; LOCK TABLE {shadow} IN SHARE MODE; SELECT pg_sleep(3); COMMIT"])
    try:
        time.sleep(0.5)
        psql(f"SELECT sequin.resume('{NAME}')")
        status, headers, body = call(proxy, "POST", "/v1/customers", {"email": "behind@example.com"})
        check("a failed local apply still returns the API's reply, marked as ahead of the database",
              status == 200 and headers.get("sequin-database-behind") == "true" and b"behind@example.com" in body,
              (status, headers))
    finally:
        locker.wait()
        psql(f"ALTER ROLE {proxy_login()} RESET lock_timeout")
        output = proxy.stop()
    logged = "could not be applied here" in output
    check("the proxy's log says the database is behind, and why", logged, "" if logged else output[-300:])
    check("the sync brings the record the apply missed", wait_for(
        lambda: row(f"SELECT count(*) FROM {NAME}.customers WHERE email = 'behind@example.com'") == "1", 10))
    psql(f"SELECT sequin.pause('{NAME}')")


def proxy_login():
    from common import PROXY_LOGIN
    return PROXY_LOGIN


def shared_rate_limit(proxy):
    """A backfill that would take every request of a 5/s budget; proxy
    requests go first and the API never sees more than the budget."""
    mock("POST", "/_admin/reset", RATE_ACCOUNT)
    mock("POST", "/_admin/stripe/customers/seed?count=2500", RATE_ACCOUNT)
    psql(f"""CREATE SERVER {RATE} FOREIGN DATA WRAPPER sequin_fdw
               OPTIONS (provider 'stripe', base_url '{MOCK}', poll_interval '1s', rate_limit '5', burst '1');
             CREATE USER MAPPING FOR CURRENT_USER SERVER {RATE} OPTIONS (api_key '{RATE_ACCOUNT}');
             CREATE USER MAPPING FOR app_proxy_alice SERVER {RATE} OPTIONS (api_key '{RATE_ACCOUNT}', proxy_token 'tok_rate');
             GRANT USAGE ON FOREIGN SERVER {RATE} TO app_proxy_alice;
             CREATE SCHEMA {RATE};
             IMPORT FOREIGN SCHEMA stripe LIMIT TO (customers) FROM SERVER {RATE} INTO {RATE};""")
    time.sleep(1)
    waits, statuses = [], []
    for i in range(8):
        started = time.monotonic()
        status, _, _ = call(proxy, "GET", f"/v1/customers?limit={i + 1}", server=RATE, token="tok_rate")
        statuses.append(status)
        waits.append((time.monotonic() - started) * 1000)
        time.sleep(0.3)
    backfilling = row(f"SELECT phase FROM sequin.sync_status WHERE server = '{RATE}'")
    waits.sort()
    check("during a backfill that wants the whole budget, proxy requests wait one token interval at most",
          backfilling == "backfill" and statuses == [200] * 8 and waits[6] < 350,
          (backfilling, statuses, [round(w) for w in waits]))
    log = mock("GET", "/_admin/requests/log", RATE_ACCOUNT)["requests"]
    times = sorted(r["at_ms"] for r in log)
    busiest = max(sum(1 for u in times[i:] if u < s + 1000) for i, s in enumerate(times))
    check("the API saw at most rate + burst requests in any second, proxy and sync together", busiest <= 6, busiest)
    writes = row(f"SELECT writes_last_minute FROM sequin.rate_limit_status WHERE server = '{RATE}'")
    check("the proxy's requests count in the server's shared budget, as writes", int(writes) >= 8, writes)


def slow_clients():
    """A client that never finishes its headers or its body is cut off."""
    proxy = Proxy("--header-timeout", "1", "--body-timeout", "1", "--max-body-bytes", "1000")
    url = urllib.parse.urlsplit(proxy.url)
    try:
        sock = socket.create_connection((url.hostname, url.port))
        sock.sendall(b"GET /app/app_proxy/v1/customers HTTP/1.1\r\nHost: x\r\n")
        sock.settimeout(5)
        started = time.monotonic()
        try:
            closed = sock.recv(1000) is not None
        except socket.timeout:
            closed = False
        check("headers not finished within --header-timeout: the connection is closed",
              closed and time.monotonic() - started < 3, time.monotonic() - started)
        sock.close()
        sock = socket.create_connection((url.hostname, url.port))
        sock.sendall(f"POST /{proxy.database}/{NAME}/v1/customers HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
                     f"{TOKENS['alice']}\r\nContent-Length: 100\r\n\r\nemail=".encode())
        sock.settimeout(5)
        reply = sock.recv(1000)
        check("a body not finished within --body-timeout: 408 from the proxy", reply.startswith(b"HTTP/1.1 408"), reply[:60])
        sock.close()
        reply = call(proxy, "POST", "/v1/customers", {"email": "big@example.com", "description": "x" * 2000})
        check("a body over --max-body-bytes: 413 from the proxy", reply[0] == 413 and proxy_error(reply), reply[:2])
    finally:
        proxy.stop()


def bounded_concurrency():
    """Two pooled connections: concurrent requests queue for them, and
    those that wait longer than --queue-timeout get a 503."""
    proxy = Proxy("--pool-size", "2", "--queue-timeout", "1")
    try:
        mock("POST", "/_admin/faults", ACCOUNT, {"account": ACCOUNT, "method": "GET", "kind": "latency",
                                                 "latency_ms": 700, "count": 6})
        replies = []

        def one(i):
            replies.append(call(proxy, "GET", f"/v1/customers?limit={i + 1}"))

        threads = [threading.Thread(target=one, args=(i,)) for i in range(6)]
        for t in threads:
            t.start()
        time.sleep(0.3)
        busy = row("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'sequin-proxy' AND state = 'active'")
        for t in threads:
            t.join()
        statuses = sorted(r[0] for r in replies)
        check("at most --pool-size requests run at once", int(busy) <= 2, busy)
        check("requests queue for a connection; past --queue-timeout they get 503 from the proxy",
              statuses.count(200) >= 2 and statuses.count(503) >= 1 and set(statuses) <= {200, 503}
              and all(proxy_error(r) for r in replies if r[0] == 503), statuses)
    finally:
        proxy.stop()


def many_clients(proxy):
    """128 clients at once, 10 requests each, against the default pool."""
    ids = [c["id"] for c in mock("GET", "/_admin/stripe/customers", ACCOUNT)["data"] if not c.get("deleted")][:3]
    statuses = []
    lock = threading.Lock()

    def client(i):
        for j in range(10):
            status = call(proxy, "GET", f"/v1/customers/{ids[(i + j) % len(ids)]}")[0]
            with lock:
                statuses.append(status)

    started = time.monotonic()
    threads = [threading.Thread(target=client, args=(i,)) for i in range(128)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    took = time.monotonic() - started
    check(f"128 concurrent clients, 1,280 requests, all answered 200 ({len(statuses) / took:.0f} requests/s)",
          statuses.count(200) == 1280, {s: statuses.count(s) for s in set(statuses)})


def main():
    setup()
    proxy = Proxy()
    try:
        crud(proxy)
        roles(proxy)
        proxy_errors(proxy)
        shared_rate_limit(proxy)
        many_clients(proxy)
    finally:
        output = proxy.stop()
    leaked = [t for t in [*TOKENS.values(), ACCOUNT] if t in output]
    check("the proxy's log never shows a token or the API key", not leaked, leaked)
    database_behind()
    slow_clients()
    bounded_concurrency()
    for name in (NAME, RATE, DOWN):
        drop(name)


if __name__ == "__main__":
    run(main, "proxy")
