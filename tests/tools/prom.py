#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Reads a Prometheus exposition page on stdin with the reference parser (python3-prometheus-client's
text_string_to_metric_families) and prints what the tests ask (Debian's /usr/bin/python3, which has the package):

  prom.py families            the family names, sorted, space-separated (counters without _total, as it names them)
  prom.py value NAME LABELS   the first sample NAME whose labels include LABELS (a JSON object): its value, an
                              integer when it is one; "absent" when there is none

A page the parser refuses fails with its error (exit 1)."""
import json
import sys

from prometheus_client.parser import text_string_to_metric_families


def main():
    fams = list(text_string_to_metric_families(sys.stdin.read()))
    if sys.argv[1] == "families":
        print(" ".join(sorted(f.name for f in fams)))
        return
    name, want = sys.argv[2], json.loads(sys.argv[3])
    for fam in fams:
        for s in fam.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in want.items()):
                print(int(s.value) if s.value == int(s.value) else s.value)
                return
    print("absent")


main()
