"""HTTP front door speaking the AWS JSON 1.1 protocol, so unmodified AWS SDKs and the CLI work.

The security pieces (``sigv4``, ``policy``, ``auth``, ``throttle``) are framework-independent
so they can be tested without a server and reused by other front doors.
"""
