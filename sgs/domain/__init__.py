"""The rules D1–D18, pure: no Kafka, faust, SQL, HTTP or argparse.

Read `rulebook.py` first: the dated rule sets (`rules.toml`) that decide publication, publicity periods and credit
repair for every record (D11, D14, D16 and 国家发展改革委令第36号).
"""
