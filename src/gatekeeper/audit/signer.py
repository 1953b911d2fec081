"""Signing digests: KMS asymmetric keys in AWS, a local RSA key in tests and the demo.

Both sign with RSASSA-PKCS1-v1_5 over SHA-256 (CloudTrail's SHA256withRSA), so a digest signed
by either verifies with the same code and only the public key. With KMS the private key never
leaves KMS; the sink's role needs ``kms:Sign`` and the verifier ``kms:GetPublicKey`` (or the
exported public key PEM).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final, Literal, Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

if TYPE_CHECKING:
    from mypy_boto3_kms.client import KMSClient

ALGORITHM: Final[Literal["RSASSA_PKCS1_V1_5_SHA_256"]] = "RSASSA_PKCS1_V1_5_SHA_256"


class Signer(Protocol):
    key_id: str

    def sign(self, message: bytes) -> bytes: ...

    def public_key_pem(self) -> bytes: ...


class KmsSigner:
    """Signs with an asymmetric KMS key (KeySpec RSA_2048+, KeyUsage SIGN_VERIFY)."""

    def __init__(self, client: KMSClient, key_id: str) -> None:
        self._kms = client
        self.key_id = key_id
        self._public: bytes | None = None

    def sign(self, message: bytes) -> bytes:
        response = self._kms.sign(
            KeyId=self.key_id, Message=message, MessageType="RAW", SigningAlgorithm=ALGORITHM
        )
        return response["Signature"]

    def public_key_pem(self) -> bytes:
        if self._public is None:
            der = self._kms.get_public_key(KeyId=self.key_id)["PublicKey"]
            key = serialization.load_der_public_key(der)
            self._public = key.public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        return self._public


class LocalRsaSigner:
    """An in-process RSA key: the demo and tests, never production (the key is in memory)."""

    def __init__(self, private_key: rsa.RSAPrivateKey, key_id: str = "local") -> None:
        self._key = private_key
        self.key_id = key_id

    @classmethod
    def generate(cls, key_id: str = "local", bits: int = 2048) -> LocalRsaSigner:
        return cls(rsa.generate_private_key(public_exponent=65537, key_size=bits), key_id)

    def sign(self, message: bytes) -> bytes:
        return self._key.sign(message, padding.PKCS1v15(), hashes.SHA256())

    def public_key_pem(self) -> bytes:
        return self._key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )


def verify_signature(public_key_pem: bytes, message: bytes, signature: bytes) -> bool:
    key = serialization.load_pem_public_key(public_key_pem)
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValueError("digest signatures are RSA: the public key is not an RSA key")
    try:
        key.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        return False
    return True
