#!/usr/bin/env python3
"""Writes N customer rows shaped like research/perf-baselines.md: 12 columns, ~176 bytes a row,
a notes field with commas, quotes and newlines. Also the matching schema (GET customer/details
JSON). Usage: bench/gen_wide.py N OUT.csv SCHEMA.json"""
import csv
import json
import sys

n, out, schema = int(sys.argv[1]), sys.argv[2], sys.argv[3]
tiers = ["Free", "Standard", "Premium", "Enterprise"]
chans = ["Email", "Phone;Slack", "In-app", "Email;Slack"]
notes = ["", "Prefers email, not phone", 'Said "call me later"\nthen hung up', "VIP"]
with open(out, "w", newline="", encoding="utf-8") as f:
    w = csv.writer(f)
    w.writerow(["email", "displayName", "organizations", "Customer Tier", "Renewal Date", "Support Email",
                "Preferred Contact Channels", "Primary Contact Phone", "Account Manager", "Seats", "Website", "Notes"])
    for i in range(n):
        w.writerow([f"customer.number{i}@example.com", f"Customer Nümber {i}", str(100 + i % 50),
                    tiers[i % 4], f"20{26 + i % 3}-{1 + i % 12:02d}-{1 + i % 28:02d}", f"help{i % 97}@example.org",
                    chans[i % 4], f"+1 415 555 {i % 10000:04d}", "Renée Laurent", str(i % 900),
                    f"https://www.c{i % 1000}.example/", notes[i % 4]])
fields = [
    {"name": "Customer Tier", "type": {"name": "SELECT", "options": tiers}},
    {"name": "Renewal Date", "type": {"name": "DATE"}},
    {"name": "Support Email", "type": {"name": "EMAIL"}},
    {"name": "Preferred Contact Channels", "type": {"name": "MULTISELECT", "options": ["Email", "Phone", "Slack", "In-app"]}},
    {"name": "Primary Contact Phone", "type": {"name": "PHONE"}},
    {"name": "Account Manager", "type": {"name": "TEXT"}},
    {"name": "Seats", "type": {"name": "NUMBER"}},
    {"name": "Website", "type": {"name": "URL"}},
    {"name": "Notes", "type": {"name": "TEXT"}},
]
json.dump({"results": fields}, open(schema, "w"))
