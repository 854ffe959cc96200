"""Local stand-in servers speaking the wire formats of the X API, the Graph API and LAPOR!.

Used by the demo and the tests so that tweepy, facebook-sdk and our LAPOR! client run for real.
"""
