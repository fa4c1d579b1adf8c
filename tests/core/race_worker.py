"""One of the two programs of tests/core/test_transport_flows.py's race, run as its own process (not a test):
``python race_worker.py pay|credit READER PIN DB ROUNDS ACCOUNT``. Prints one line per failure and a summary."""

import sys
import time

from cardsuite.transport.pcsc import PcscTransport
from cardsuite.wallet.card import WalletClient
from cardsuite.wallet.issuer import Issuer, IssuerSecret
from cardsuite.wallet.merchant import PaymentRequest, pay_with_card
from cardsuite.wallet.store import WalletStore

SECRET = IssuerSecret(bytes.fromhex("5a" * 32), "test secret")


def main(role: str, reader: str, pin: str, db: str, *, rounds: int, account: int) -> int:
    failures = 0
    registry = WalletStore(db) if role == "credit" else None
    with PcscTransport(reader) as transport:
        client = WalletClient(transport)
        for n in range(rounds):
            try:
                if role == "pay":
                    request = PaymentRequest(b"RACE0001", 10, b"race %d" % n, int(time.time() * 1000))
                    pay_with_card(client, request, pin)
                else:
                    assert registry is not None
                    Issuer(registry, SECRET).credit(client, account, 100)
            except Exception as exc:  # noqa: BLE001 - every failure is counted and shown
                failures += 1
                print(f"{role} {n}: {type(exc).__name__}: {exc}", flush=True)
    if registry is not None:
        registry.close()
    print(f"{role}: {rounds - failures}/{rounds} ok", flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:5], rounds=int(sys.argv[5]), account=int(sys.argv[6])))
