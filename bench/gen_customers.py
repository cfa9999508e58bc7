#!/usr/bin/env python3
"""Writes N valid customer rows (the sample file's columns) to a CSV, for benchmarks.
Usage: bench/gen_customers.py N OUT.csv [PREFIX]   (emails PREFIX0@example.com…; default
bench.user: files with other prefixes add other customers)"""
import csv
import sys

n, out = int(sys.argv[1]), sys.argv[2]
prefix = sys.argv[3] if len(sys.argv) > 3 else "bench.user"
tiers = ["Free", "Standard", "Premium", "Enterprise"]
with open(out, "w", newline="", encoding="utf-8") as f:
    w = csv.writer(f)
    w.writerow(["email", "displayName", "organizations", "Customer Tier", "Renewal Date",
                "Preferred Contact Channels", "Seats", "Notes"])
    for i in range(n):
        w.writerow([f"{prefix}{i}@example.com", f"Bench Ü. User {i}", str(101 + i % 12),
                    tiers[i % 4], f"2027-{1 + i % 12:02d}-{1 + i % 28:02d}", "Email;Slack",
                    str(i % 500), "Imported by the benchmark, with a comma\nand a newline"])
