"""connreq"""
