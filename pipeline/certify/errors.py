"""The certificate's error, apart from the certificate so that the command line can name it without importing the
backends."""


class CertificateError(ValueError):
    """A certificate that cannot be read or trusted as one of ours: exit 2, one line naming the field."""
