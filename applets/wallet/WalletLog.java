package cardsuite.wallet;

import cardsuite.isofs.CyclicRecordFile;

/**
 * The transaction log: a cyclic EF of the isofs library, record 1 the newest. Kept behind this one
 * class so the wallet depends on the library's API in a single place.
 */
final class WalletLog implements WalletConstants {
    private final CyclicRecordFile file;

    /** Install time: the file allocates its LOG_RECORDS × LOG_RECORD bytes once. */
    WalletLog() {
        file = new CyclicRecordFile(LOG_FID, LOG_SFI, LOG_RECORD, LOG_RECORDS);
    }

    /** Adds a record as the new record 1; joins the caller's transaction. */
    void append(byte[] src, short off) {
        file.appendRecord(src, off, LOG_RECORD);
    }

    /** Copies record recNo (1 = newest) to dst and returns its length; 6A83 when there is no such record. */
    short read(byte recNo, byte[] dst, short off) {
        return file.readRecord(recNo, dst, off);
    }
}
