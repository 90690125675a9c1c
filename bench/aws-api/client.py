"""The client of bench/aws-api.sh: one process, one keep-alive connection.

It pre-signs every AWS request with botocore (SigV4Auth over an AWSRequest,
exactly what the aws CLI and boto3 send), so that signing costs the client
nothing while it measures, then sends each request and times it from the
first byte sent to the last byte of the answer read. Every answer is checked:
a wrong status or shape aborts the run rather than timing an error.

Two measurements, chosen with --part:
  sigv4     rounds of four DescribeServices of one name, in a random order
            each round, so that they see the same machine load: correctly
            signed (verification and the handler), wrong signature (the whole verification, then
            refused), unknown key (the Authorization header parsed and the
            key looked up, no hashing: refused) and unsigned (refused before
            any parsing). Differences of the paired round times isolate what
            each step costs end to end.
  describe  DescribeServices of 1 random name against GET /v1/services/NAME,
            and DescribeServices of 10 random names against 10 GETs of
            /v1/services/NAME (the same information), interleaved request by
            request.
Prints plain-text tables, and for describe whether issue 10's goals hold
(p99 at most 20 ms, and at most 1.5x /v1's p99).
"""

import argparse
import http.client
import json
import random
import statistics
import time

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

REGION = "us-east-1"
TARGET = "AmazonEC2ContainerServiceV20141113.DescribeServices"


def signed(endpoint, creds, body):
    """The headers botocore sends for an ECS JSON 1.1 request with `body`."""
    req = AWSRequest(
        method="POST",
        url=endpoint + "/",
        data=body,
        headers={"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": TARGET},
    )
    SigV4Auth(creds, "ecs", REGION).add_auth(req)
    return dict(req.headers.items())


def describe_body(names):
    return json.dumps({"cluster": "default", "services": names}).encode()


class Conn:
    def __init__(self, host):
        self.c = http.client.HTTPConnection(host)

    def send(self, method, path, body=None, headers=None):
        """(elapsed ms, status, body) of one request."""
        s = time.perf_counter()
        self.c.request(method, path, body=body, headers=headers or {})
        r = self.c.getresponse()
        data = r.read()
        return (time.perf_counter() - s) * 1000, r.status, data


def stats(ms):
    t = sorted(ms)
    n = len(t)
    return {
        "p50": t[n // 2],
        "p99": t[max(0, int(n * 0.99) - 1)],
        "max": t[-1],
        "per_s": 1000 / statistics.fmean(t),
    }


def row(label, s, unit="req/s"):
    return f"  {label:<36} {s['p50']:>8.2f} {s['p99']:>8.2f} {s['max']:>8.2f} {s['per_s']:>9.0f} {unit}"


def header():
    return f"  {'':<36} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'rate':>9}"


def ratio(label, a, b):
    return (
        f"  {label:<36} {a['p50'] / b['p50']:>7.2f}x {a['p99'] / b['p99']:>7.2f}x "
        f"{a['max'] / b['max']:>7.2f}x {a['per_s'] / b['per_s']:>8.2f}x"
    )


def median_diff_us(a, b, rng):
    """Median of the paired differences a[i] - b[i] in µs, with a 95%
    bootstrap interval (the noise of a shared machine is large next to a
    few microseconds, so the interval says how far to trust the figure)."""
    d = [(x - y) * 1000 for x, y in zip(a, b)]
    boots = sorted(
        statistics.median(rng.choices(d, k=len(d))) for _ in range(200)
    )
    return statistics.median(d), boots[5], boots[194]


def expect_error(status, data, code):
    if status < 400 or json.loads(data).get("__type") != code:
        raise SystemExit(f"expected {code}, got {status}: {data[:300]!r}")


def expect_services(status, data, n):
    if status != 200:
        raise SystemExit(f"DescribeServices answered {status}: {data[:300]!r}")
    out = json.loads(data)
    if len(out.get("services", [])) != n or out.get("failures"):
        raise SystemExit(f"DescribeServices answered {data[:300]!r}, wanted {n} services")


def part_sigv4(a, conn, names, creds, rng):
    wrong_key = Credentials("AKIAUNKNOWNBENCHKEY0", a.secret)
    plan = []
    for _ in range(a.requests):
        body = describe_body([rng.choice(names)])
        good = signed(a.endpoint, creds, body)
        bad = dict(good)
        auth = bad["Authorization"]
        bad["Authorization"] = auth[:-1] + ("0" if auth[-1] != "0" else "1")
        unknown = signed(a.endpoint, wrong_key, body)
        unsigned = {k: v for k, v in good.items() if k.lower() not in ("authorization", "x-amz-date")}
        plan.append((body, good, bad, unknown, unsigned))
    kinds = ("signed", "wrong signature", "unknown key", "unsigned")
    t = {k: [] for k in kinds}
    for body, good, bad, unknown, unsigned in plan:
        # In a random order each round: a request that follows the handler's
        # store call finds colder caches than one that follows a refusal.
        sends = [
            ("signed", good, lambda st, data: expect_services(st, data, 1)),
            ("wrong signature", bad, lambda st, data: expect_error(st, data, "InvalidSignatureException")),
            ("unknown key", unknown, lambda st, data: expect_error(st, data, "UnrecognizedClientException")),
            ("unsigned", unsigned, lambda st, data: expect_error(st, data, "MissingAuthenticationTokenException")),
        ]
        rng.shuffle(sends)
        for kind, headers, check in sends:
            ms, st, data = conn.send("POST", "/", body, headers)
            check(st, data)
            t[kind].append(ms)
    print(f"-- {a.requests} rounds of 4 DescribeServices (1 name), in a random order each; one keep-alive connection")
    print(header())
    labels = {
        "signed": "signed: verified, then answered",
        "wrong signature": "wrong signature: verified, refused",
        "unknown key": "unknown key: parsed, refused",
        "unsigned": "unsigned: refused at once",
    }
    for k in kinds:
        print(row(labels[k], stats(t[k])))
    print("-- median of the paired differences, µs (95% bootstrap interval)")
    for what, x, y in (
        ("verification, hashing + HMAC (wrong sig - unknown key)", "wrong signature", "unknown key"),
        ("verification, all of it (wrong sig - unsigned)", "wrong signature", "unsigned"),
        ("the handler (signed - wrong sig)", "signed", "wrong signature"),
    ):
        m, lo, hi = median_diff_us(t[x], t[y], rng)
        print(f"  {what:<56} {m:>7.1f}  [{lo:.1f}, {hi:.1f}]")
    print(
        "  (each latency also holds the HTTP exchange, the Python client and the scheduler;\n"
        "   the paired differences cancel those, within this machine's noise)"
    )


def part_describe(a, conn, names, creds, rng):
    single, batch = [], []
    for _ in range(a.requests):
        n = rng.choice(names)
        body = describe_body([n])
        single.append((body, signed(a.endpoint, creds, body), n))
    for _ in range(a.batches):
        ns = rng.sample(names, 10)
        body = describe_body(ns)
        batch.append((body, signed(a.endpoint, creds, body), ns))
    aws1, v1, aws10, v10 = [], [], [], []
    for body, headers, n in single:
        ms, st, data = conn.send("POST", "/", body, headers)
        expect_services(st, data, 1)
        aws1.append(ms)
        ms, st, data = conn.send("GET", f"/v1/services/{n}")
        if st != 200:
            raise SystemExit(f"GET /v1/services/{n} answered {st}: {data[:300]!r}")
        v1.append(ms)
    for body, headers, ns in batch:
        ms, st, data = conn.send("POST", "/", body, headers)
        expect_services(st, data, 10)
        aws10.append(ms)
        total = 0.0
        for n in ns:
            ms, st, data = conn.send("GET", f"/v1/services/{n}")
            if st != 200:
                raise SystemExit(f"GET /v1/services/{n} answered {st}: {data[:300]!r}")
            total += ms
        v10.append(total)
    print(
        f"-- {a.services} services; {a.requests} single and {a.batches} batch queries, "
        "AWS and /v1 interleaved; one keep-alive connection"
    )
    print(header())
    s_aws1, s_v1, s_aws10, s_v10 = stats(aws1), stats(v1), stats(aws10), stats(v10)
    print(row("DescribeServices, 1 name", s_aws1))
    print(row("GET /v1/services/NAME", s_v1))
    print(ratio("ratio AWS / v1", s_aws1, s_v1))
    print(row("DescribeServices, 10 names", s_aws10, "calls/s"))
    print(row("10 x GET /v1/services/NAME", s_v10, "calls/s"))
    print(ratio("ratio AWS / v1", s_aws10, s_v10))
    for what, aws, v1 in (("1 name", s_aws1, s_v1), ("10 names", s_aws10, s_v10)):
        fast = aws["p99"] <= 20
        close = aws["p99"] <= 1.5 * v1["p99"]
        print(
            f"  goal, {what}: p99 {aws['p99']:.2f} ms <= 20 ms {'met' if fast else 'MISSED'}; "
            f"{aws['p99'] / v1['p99']:.2f}x /v1's p99 <= 1.5x {'met' if close else 'MISSED'}"
        )


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--endpoint", required=True, help="http://127.0.0.1:PORT")
    p.add_argument("--key", required=True)
    p.add_argument("--secret", required=True)
    p.add_argument("--services", type=int, required=True, help="services svc0..svcN-1 exist")
    p.add_argument("--part", choices=("sigv4", "describe"), required=True)
    p.add_argument("--requests", type=int, default=1000)
    p.add_argument("--batches", type=int, default=300)
    p.add_argument("--seed", type=int, default=10)
    a = p.parse_args()
    rng = random.Random(a.seed)
    names = [f"svc{i}" for i in range(a.services)]
    creds = Credentials(a.key, a.secret)
    conn = Conn(a.endpoint.split("//", 1)[1])
    # Warm up: the connection, the server's caches, the first store reads.
    for n in names[:20]:
        body = describe_body([n])
        conn.send("POST", "/", body, signed(a.endpoint, creds, body))
        conn.send("GET", f"/v1/services/{n}")
    {"sigv4": part_sigv4, "describe": part_describe}[a.part](a, conn, names, creds, rng)


if __name__ == "__main__":
    main()
