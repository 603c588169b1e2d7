#!/usr/bin/python3
"""Generates src/api/tests/data/sigv4_vectors.h: requests signed by botocore's own SigV4 signers.

Run with Debian's interpreter (/usr/bin/python3, botocore 1.29 + awscrt), not a pyenv python:
    /usr/bin/python3 tools/gen_sigv4_vectors.py > src/api/tests/data/sigv4_vectors.h

Each vector is signed twice when possible: by the pure-Python botocore.auth.SigV4Auth and by
botocore.crt.auth.CrtSigV4Auth (the signer botocore picks when awscrt is installed, as it is for
Debian's AWS CLI). Both must agree; the generator fails loudly if they do not.
"""
import datetime
import hashlib
import sys
import types
from urllib.parse import urlsplit

import botocore
import botocore.auth
from botocore.awsrequest import AWSRequest
from botocore.compat import HTTPHeaders
from botocore.credentials import Credentials
from botocore.utils import percent_encode_sequence

try:
    import botocore.crt.auth as crt_auth
except ImportError:  # awscrt absent: the Python signer alone is still the reference
    crt_auth = None

AKID = 'AKIDEXAMPLE'
SECRET = 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY'


def freeze(when):
    class Frozen(datetime.datetime):
        @classmethod
        def utcnow(cls):
            return cls(*when.timetuple()[:6])

    fake = types.SimpleNamespace(datetime=Frozen, timezone=datetime.timezone)
    botocore.auth.datetime = fake
    if crt_auth is not None:
        crt_auth.datetime = fake


def host_header(url):
    # What urllib3 sends: the netloc, without a default port.
    parts = urlsplit(url)
    default = {'http': 80, 'https': 443}[parts.scheme]
    if parts.port and parts.port != default:
        return f'{parts.hostname}:{parts.port}'
    return parts.hostname


def sign(signer_cls, v):
    freeze(v['when'])
    headers = HTTPHeaders()
    for name, value in v['headers']:
        headers[name] = value  # HTTPHeaders appends, so repeated names stay repeated
    req = AWSRequest(method=v['method'], url=v['url'], data=v['body'])
    req.headers = headers
    signer_cls(Credentials(AKID, SECRET), v['service'], v['region']).add_auth(req)
    prepared = req.prepare()
    parts = urlsplit(prepared.url)
    target = (parts.path or '/') + ('?' + parts.query if parts.query else '')
    # req.headers, not prepared.headers: preparing copies into a dict and drops repeated names.
    sent = [(k, v if isinstance(v, str) else v.decode()) for k, v in req.headers.items()
            if k.lower() != 'authorization']
    if not any(k.lower() == 'host' for k, _ in sent):
        sent.insert(0, ('Host', host_header(v['url'])))
    return target, sent, prepared.headers['Authorization']


BODY_JSON = b'{"cluster":"default","maxResults":10}'
VECTORS = [
    dict(name='ecs_list_clusters', method='POST', url='https://ecs.us-east-1.amazonaws.com/',
         region='us-east-1', service='ecs', when=datetime.datetime(2026, 11, 25, 8, 15, 0),
         headers=[('X-Amz-Target', 'AmazonEC2ContainerServiceV20141113.ListClusters'),
                  ('Content-Type', 'application/x-amz-json-1.1'),
                  ('User-Agent', 'aws-cli/2.9.19 Python/3.11.2 Linux/6.1 source/x86_64.debian.12')],
         body=b'{}'),
    dict(name='ecs_describe_services_body', method='POST',
         url='https://ecs.us-east-1.amazonaws.com/', region='us-east-1', service='ecs',
         when=datetime.datetime(2026, 11, 25, 8, 15, 0),
         headers=[('X-Amz-Target', 'AmazonEC2ContainerServiceV20141113.DescribeServices'),
                  ('Content-Type', 'application/x-amz-json-1.1')],
         body=BODY_JSON),
    # botocore's serializers put query parameters into the URL already encoded (the way
    # prepare_request_dict does, with percent_encode_sequence), so the vector does the same.
    dict(name='query_special_chars', method='GET',
         url='https://ecs.us-east-1.amazonaws.com/v1/items/a%20b?' + percent_encode_sequence(
             [('Name', 'my cluster'), ('Filter', 'a/b+c=d&e'), ('Filter', '%~x*'), ('Empty', ''),
              ('caf\u00e9', '\u00fcber (1)'), ('Action', 'List')]),
         region='us-east-1', service='ecs', when=datetime.datetime(2026, 11, 25, 8, 15, 0),
         headers=[], body=b''),
    dict(name='extra_signed_headers', method='POST', url='http://localhost:8080/',
         region='eu-west-1', service='ecs', when=datetime.datetime(2026, 11, 25, 8, 15, 0),
         headers=[('X-Amz-Target', 'AmazonEC2ContainerServiceV20141113.ListServices'),
                  ('Content-Type', 'application/x-amz-json-1.1'),
                  ('X-Amz-Content-SHA256', hashlib.sha256(BODY_JSON).hexdigest()),
                  ('amz-sdk-invocation-id', '4d91ec34-08d7-42cd-8f70-c09dbaebc697'),
                  ('amz-sdk-request', 'attempt=1;  max=3'),
                  ('X-Spaced', '  a   b \t c  '),
                  ('X-Repeated', 'one'), ('X-Repeated', ' two  three ')],
         body=BODY_JSON),
    dict(name='logs_other_region_midnight', method='POST',
         url='https://logs.ap-southeast-2.amazonaws.com/', region='ap-southeast-2',
         service='logs', when=datetime.datetime(2026, 12, 31, 23, 59, 59),
         headers=[('X-Amz-Target', 'Logs_20140328.DescribeLogGroups'),
                  ('Content-Type', 'application/x-amz-json-1.1')],
         body=b'{"limit":5}'),
    # A Date header makes the Python signer date the request with it (rewritten) instead of
    # X-Amz-Date; the CRT signer adds X-Amz-Date regardless, so the two differ here by design.
    dict(name='date_header', crt=False, method='POST', url='https://ecs.us-east-1.amazonaws.com/',
         region='us-east-1', service='ecs', when=datetime.datetime(2026, 11, 25, 8, 15, 0),
         headers=[('X-Amz-Target', 'AmazonEC2ContainerServiceV20141113.ListClusters'),
                  ('Content-Type', 'application/x-amz-json-1.1'),
                  ('Date', 'Thu, 01 Jan 1970 00:00:00 GMT')],
         body=b'{}'),
    dict(name='path_dot_segments', method='GET',
         url='https://ecs.us-east-1.amazonaws.com/a/./b/../c//d~e/', region='us-east-1',
         service='ecs', when=datetime.datetime(2026, 11, 25, 8, 15, 0), headers=[], body=b''),
]


def cstr(data):
    if isinstance(data, str):
        data = data.encode()
    out = []
    for b in data:
        c = chr(b)
        if c in '"\\':
            out.append('\\' + c)
        elif 0x20 <= b < 0x7f:
            out.append(c)
        else:
            out.append('\\%03o' % b)  # octal escapes never swallow the next character
    return '"' + ''.join(out) + '"'


def main():
    vectors = []
    for v in VECTORS:
        target, headers, auth = sign(botocore.auth.SigV4Auth, v)
        if crt_auth is not None and v.get('crt', True):
            ctarget, cheaders, cauth = sign(crt_auth.CrtSigV4Auth, v)
            if cauth != auth:
                sys.exit(f'{v["name"]}: CRT and Python signers disagree:\n{auth}\n{cauth}\n'
                         f'{target} {ctarget}')
        epoch = int(v['when'].replace(tzinfo=datetime.timezone.utc).timestamp())
        vectors.append((v, target, headers, auth, epoch))

    print('#pragma once')
    print('// Generated by tools/gen_sigv4_vectors.py from botocore %s; do not edit.' %
          botocore.__version__)
    print('// Requests as the HTTP client sends them (Host added as urllib3 does), signed by')
    print('// botocore.auth.SigV4Auth%s.' % (' and checked against botocore.crt.auth.CrtSigV4Auth'
                                             if crt_auth else ''))
    print('// clang-format off')
    print()
    print('#include <cstdint>')
    print('#include <string>')
    print('#include <utility>')
    print('#include <vector>')
    print()
    print('namespace berth::api::testdata {')
    print()
    print('struct SigV4Vector {')
    print('  std::string name;')
    print('  std::string access_key_id;')
    print('  std::string secret_access_key;')
    print('  std::string region;')
    print('  std::string service;')
    print('  int64_t epoch_seconds;  // the signing time')
    print('  std::string method;')
    print('  std::string target;')
    print('  std::vector<std::pair<std::string, std::string>> headers;  // without Authorization')
    print('  std::string body;')
    print('  std::string authorization;  // what botocore put in the Authorization header')
    print('};')
    print()
    print('inline const std::vector<SigV4Vector> kSigV4Vectors = {')
    for v, target, headers, auth, epoch in vectors:
        print('    {%s,' % cstr(v['name']))
        print('     %s,' % cstr(AKID))
        print('     %s,' % cstr(SECRET))
        print('     %s,' % cstr(v['region']))
        print('     %s,' % cstr(v['service']))
        print('     %d,' % epoch)
        print('     %s,' % cstr(v['method']))
        print('     %s,' % cstr(target))
        print('     {')
        for name, value in headers:
            print('         {%s, %s},' % (cstr(name), cstr(value)))
        print('     },')
        print('     std::string(%s, %d),' % (cstr(v['body']), len(v['body'])))
        print('     %s},' % cstr(auth))
    print('};')
    print()
    print('}  // namespace berth::api::testdata')
    print('// clang-format on')


if __name__ == '__main__':
    main()
