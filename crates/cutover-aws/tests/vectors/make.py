#!/usr/bin/env python3
"""Signs fixed requests with botocore's own SigV4 signer and prints them as JSON: the
vectors `cutover-aws`'s verifier is tested against (tests/vectors/botocore.json).

usage: python3 tests/vectors/make.py > tests/vectors/botocore.json   (needs botocore)
"""
import datetime
import json
from unittest import mock

import botocore.auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

KEY, SECRET = "AKIACUTOVEREXAMPLE01", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
WHEN = datetime.datetime(2026, 12, 4, 19, 5, 0)

CASES = [
    ("ecs-json", "POST", "http://127.0.0.1:7070/", "us-east-1", "ecs",
     {"Content-Type": "application/x-amz-json-1.1",
      "X-Amz-Target": "AmazonEC2ContainerServiceV20141113.DescribeServices"},
     '{"cluster": "default", "services": ["web"]}'),
    ("sts-query", "POST", "http://localhost:7070/", "eu-west-3", "sts",
     {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
     "Action=GetCallerIdentity&Version=2011-06-15"),
    ("get-query-path", "GET",
     "http://127.0.0.1:7070/v2/a%20b/c~d/%E2%82%AC?z=1&a=x%2Fy&a=b&empty=&sp=a%20b", "us-west-2",
     "ecr", {"X-Extra": "  several   spaces  inside "}, ""),
    ("empty-body", "POST", "http://127.0.0.1:7070/", "ap-south-1", "codedeploy",
     {"X-Amz-Target": "CodeDeploy_20141006.ListApplications",
      "Content-Type": "application/x-amz-json-1.1"}, ""),
]


def main():
    out = []
    for name, method, url, region, service, headers, body in CASES:
        req = AWSRequest(method=method, url=url, headers=dict(headers), data=body.encode())
        with mock.patch.object(botocore.auth.datetime, "datetime", wraps=datetime.datetime) as dt:
            dt.utcnow.return_value = WHEN
            dt.now.return_value = WHEN.replace(tzinfo=datetime.timezone.utc)
            botocore.auth.SigV4Auth(Credentials(KEY, SECRET), service, region).add_auth(req)
        prepared = req.prepare()
        out.append({
            "name": name,
            "method": method,
            "target": "/" + prepared.url.split("://", 1)[1].split("/", 1)[1],
            "headers": [[k, v if isinstance(v, str) else v.decode()] for k, v in prepared.headers.items()],
            "host": url.split("://", 1)[1].split("/", 1)[0],
            "body": body,
            "key": KEY,
            "secret": SECRET,
            "now_ms": int(WHEN.replace(tzinfo=datetime.timezone.utc).timestamp() * 1000),
        })
    print(json.dumps(out, indent=1))


main()
