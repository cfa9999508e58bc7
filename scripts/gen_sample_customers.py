#!/usr/bin/env python3
"""Writes sample-data/customers.csv: ~1,000 realistic customer rows, a few dozen of them invalid
in known ways. Deterministic (fixed seed): re-running it gives the same file, and the tests pin
exactly which rows fail and why. Run from the repository root."""
import csv
import random
import unicodedata

rng = random.Random(20261129)

FIRST = ["José", "Zoë", "François", "Björn", "Siobhán", "Łukasz", "Nguyễn", "Søren", "Chloé", "Ana",
         "Mateo", "Aisha", "Hiroshi", "Priya", "Olúwaseun", "Ingrid", "Răzvan", "Noémie", "Jürgen",
         "Camille", "Dmitri", "Fatima", "Liam", "Mei", "Tomás", "Elif", "Kwame", "Astrid", "Rafael", "Yuki"]
LAST = ["Álvarez", "Müller", "Lefèvre", "Ångström", "Ó Briain", "Wiśniewski", "Văn An", "Kierkegaard",
        "Dubois", "García", "Rossi", "Khan", "Tanaka", "Patel", "Adébáyọ̀", "Johansson", "Popescu",
        "Girard", "Schäfer", "Martin", "Ivanov", "Haddad", "O'Connor", "Chen", "Núñez", "Yılmaz",
        "Mensah", "Lindqvist", "Ferreira", "Sato"]
DOMAINS = ["example.com", "example.org", "acme.example", "globex.example", "initech.example",
           "mail.example.net", "société.example"]
TIERS = ["Free", "Standard", "Premium", "Enterprise"]
CHANNELS = ["Email", "Phone", "Slack", "In-app"]
MANAGERS = ["Renée Laurent", "Marcus O'Neil", "Grace Hopper", "Søren Berg", "", ""]
ORGS = [str(i) for i in range(101, 113)]
NOTES = [
    "",
    "",
    "VIP, handle with care",
    'Prefers calls after 3pm, not Mondays.\nEscalate to "Tier 2" if urgent.',
    "Renewal discussed at QBR; wants SSO, SCIM and audit logs",
    "Migrated from legacy CRM (id 88213)",
    'Said: "we\'ll upgrade next quarter", follow up',
    "Line one\nLine two\nLine three",
]

HEADER = ["email", "displayName", "organizations", "Customer Tier", "Renewal Date", "Support Email",
          "Preferred Contact Channels", "Primary Contact Phone", "Account Manager", "Seats",
          "Website", "Notes"]


def ascii_slug(s):
    # Accents folded to ASCII for the address (the display name keeps them).
    folded = unicodedata.normalize("NFKD", s.replace("ł", "l").replace("Ł", "L").replace("ı", "i"))
    return "".join(c for c in folded.lower() if c.isascii() and c.isalnum())


def good_row(i):
    first, last = rng.choice(FIRST), rng.choice(LAST)
    email = f"{ascii_slug(first)}.{ascii_slug(last)}{i}@{rng.choice(DOMAINS[:6])}"
    if i % 37 == 0:
        email = email.upper()
    tier = rng.choice(TIERS)
    if i % 29 == 0:
        tier = tier.lower()  # matched case-insensitively, sent with the canonical spelling
    date = f"{rng.randint(2026, 2028)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}" if rng.random() < 0.8 else ""
    support = f"support@{rng.choice(DOMAINS[:6])}" if rng.random() < 0.5 else ""
    chans = ";".join(rng.sample(CHANNELS, rng.randint(0, 3)))
    phone = rng.choice(["+1 415 555 %04d" % rng.randint(0, 9999), "0422%06d" % rng.randint(0, 999999),
                        "+44 20 7946 %04d" % rng.randint(0, 9999), ""])
    orgs = ";".join(rng.sample(ORGS, rng.choice([0, 1, 1, 1, 2])))
    seats = str(rng.choice([1, 5, 10, 25, 50, 100, 250, 1000])) if rng.random() < 0.7 else ""
    site = f"https://www.{ascii_slug(last)}.example/" if rng.random() < 0.4 else ""
    return [email, f"{first} {last}", orgs, tier, date, support, chans, phone,
            rng.choice(MANAGERS), seats, site, rng.choice(NOTES)]


# Row number (1-based data row) -> how to break it. Each kind of mistake a CRM export makes.
BREAK = {
    17: ("email", "maria.garcia.example.com"),
    45: ("email", ""),
    63: ("email", "li.wei@localhost"),
    88: ("email", "Jane Doe <jane@example.com>"),
    101: ("Customer Tier", "Gold"),
    130: ("Customer Tier", "Platnum"),
    152: ("Customer Tier", "Premium Plus"),
    177: ("Renewal Date", "31/12/2026"),
    199: ("Renewal Date", "2026-02-30"),
    230: ("Renewal Date", "next spring"),
    256: ("Support Email", "support@"),
    281: ("Support Email", "help desk@example.com"),
    300: ("Preferred Contact Channels", "Email;Fax"),
    333: ("Preferred Contact Channels", "Carrier pigeon"),
    365: ("Primary Contact Phone", "call me"),
    390: ("Primary Contact Phone", "+1 415 555 0100 ext. 12"),
    412: ("Seats", "12 seats"),
    444: ("Seats", "1,200"),
    470: ("Website", "www.example.com"),
    499: ("Website", "https://"),
    # Organization names instead of ids: looked up on the site (Acme exists; Globex is created).
    523: ("organizations", "Acme Pty Ltd"),
    550: ("organizations", "101;Globex"),
    # Valid locally, refused by the server: organization ids that do not exist on the site.
    600: ("organizations", "999"),
    640: ("organizations", "101;998"),
    690: ("organizations", "997"),
    733: ("organizations", "996"),
    # Two problems in one row: both are reported.
    760: ("Customer Tier", "Bronze"),
    801: ("email", "bob@@example.com"),
    845: ("Renewal Date", "2026/07/01"),
    870: ("Seats", "ten"),
    910: ("Website", "ftp://files.example.com"),
    955: ("Support Email", "noreply at example dot com"),
}
SECOND = {760: ("Renewal Date", "12/31/2026"), 801: ("Primary Contact Phone", "n/a")}
DUPLICATE_OF = {120: 10, 480: 400, 888: 10}
RAGGED = {633: 5, 777: 13}  # row -> number of cells written
BLANK = {500}

rows = []
for i in range(1, 1001):
    rows.append(good_row(i))
for i, (col, val) in list(BREAK.items()) + list(SECOND.items()):
    rows[i - 1][HEADER.index(col)] = val
for i, first in DUPLICATE_OF.items():
    rows[i - 1][0] = rows[first - 1][0].lower() if i == 888 else rows[first - 1][0]
for i, n in RAGGED.items():
    rows[i - 1] = rows[i - 1][:n] if n < len(HEADER) else rows[i - 1] + ["unexpected extra cell"]
for i in BLANK:
    rows[i - 1] = [""] * len(HEADER)

with open("sample-data/customers.csv", "w", newline="", encoding="utf-8") as f:
    w = csv.writer(f, lineterminator="\r\n")
    w.writerow(HEADER)
    w.writerows(rows)
with open("templates/customers.csv", "w", newline="", encoding="utf-8") as f:
    csv.writer(f, lineterminator="\r\n").writerow(HEADER)
