package cardsuite.wallet;

/**
 * The e-cash purse's APDU interface and data layouts ([P004]); docs/wallet-apdu.md, section
 * "E-cash", and docs/ecash-protocol.md spell every layout out byte by byte.
 */
public interface EcashConstants {
    // ---- instructions: proprietary, plain (CLA 80)
    byte INS_ECASH_GET_KEY = (byte) 0x4A;
    byte INS_ECASH_LOAD_RANGE = (byte) 0x3A;
    byte INS_ECASH_PAY = (byte) 0x56;
    byte INS_ECASH_LAST_TOKEN = (byte) 0x58;
    byte INS_ECASH_STATUS = (byte) 0x5A;
    // ---- issuer command, secure messaging only (CLA 84)
    byte INS_ECASH_PERSONALISE = (byte) 0x38;

    // ---- denominations 1, 10, 100, 1,000, 10,000: [P004]'s five units (its example 20,430 =
    // 2 × 10,000 + 4 × 100 + 3 × 10 needs the 10). A unit is named by its exponent e (value 10^e).
    short UNITS = (short) 5;
    /**
     * At most this many units of one denomination per payment: the chain hashes per payment are bounded
     * by UNITS × MAX_UNITS_PER_PAYMENT (495), whatever the amount and however far a vendor's chain has run.
     */
    short MAX_UNITS_PER_PAYMENT = (short) 99;
    /** Vendors the purse can pay; each costs VENDOR_SLOT bytes of persistent memory. */
    short MAX_VENDORS = (short) 8;

    // ---- sizes
    short PID = (short) 8;
    short SN = (short) 4;
    short COUNT = (short) 4; // unit counts and chain positions, 4-byte unsigned
    short VENDOR_ID = (short) 8; // the first 8 bytes of SHA-256(g^v)
    short REFERENCE = (short) 8; // the vendor's order reference ([P004]'s props)
    short TOKEN_KEY = (short) 32;
    short SECRET = (short) 32; // chain states, DH x-coordinates, SHA-256 outputs

    // ---- per-vendor slot: vendor ID ‖ UNITS × (count ‖ chain state)
    short SLOT_UNIT = (short) (COUNT + SECRET);
    short SLOT_UNITS = VENDOR_ID;
    short VENDOR_SLOT = (short) (VENDOR_ID + UNITS * SLOT_UNIT); // 188 bytes

    // ---- range certificate body: UNITS × count ‖ PID ‖ SN, then the broker's ECDSA signature (DER)
    short RANGE_PID = (short) (UNITS * COUNT);
    short RANGE_SN = (short) (RANGE_PID + PID);
    short RANGE_BODY = (short) (RANGE_SN + SN); // 32
    short SIGNATURE_MAX = (short) 72;

    // ---- ECASH PERSONALISE plaintext: broker signature key ‖ broker DH key (uncompressed P-256 points)
    short PERSO_EC_BROKER_SIG = (short) 0;
    short PERSO_EC_BROKER_DH = (short) 65;
    short PERSO_EC_LENGTH = (short) 130;

    // ---- ECASH PAY command data: amount ‖ reference ‖ g^v
    short EPAY_AMOUNT = (short) 0;
    short EPAY_REFERENCE = (short) 4;
    short EPAY_VENDOR_KEY = (short) 12;
    short EPAY_LENGTH = (short) 77;

    // ---- token: PID ‖ vendor ID ‖ reference ‖ amount ‖ N ‖ N × row ‖ certificate
    short TOKEN_PID = (short) 0;
    short TOKEN_VENDOR = (short) 8;
    short TOKEN_REFERENCE = (short) 16;
    short TOKEN_AMOUNT = (short) 24;
    short TOKEN_ROWS = (short) 28;
    short TOKEN_ROW0 = (short) 29;
    /** row: unit exponent ‖ cumulative count at this vendor ‖ payword */
    short ROW = (short) (1 + COUNT + SECRET); // 37
    short TOKEN_CERT = (short) 32; // HMAC-SHA-256
    short TOKEN_MAX = (short) (TOKEN_ROW0 + UNITS * ROW + TOKEN_CERT); // 246

    // ---- derivation labels (the last input byte), see docs/ecash-protocol.md
    byte LABEL_TOKEN_KEY = (byte) 0x4B; // 'K'
    byte LABEL_ROOT = (byte) 0x52; // 'R'
    byte LABEL_PAYWORD = (byte) 0x50; // 'P'

    // ---- purse states (ECASH STATUS byte 0)
    byte PURSE_NONE = (byte) 0x00;
    byte PURSE_READY = (byte) 0x01; // broker keys and c present, no range yet
    byte PURSE_FUNDED = (byte) 0x02; // PID bound by the first range certificate

    // ---- ECASH STATUS, P1 = 00: state ‖ vendors used ‖ max vendors ‖ PID ‖ last SN ‖ limits ‖ spent
    short ESTATUS_LENGTH = (short) (3 + PID + SN + 2 * UNITS * COUNT); // 55
    // P1 = slot number 1..MAX_VENDORS: vendor ID ‖ UNITS × count
    short ESLOT_LENGTH = (short) (VENDOR_ID + UNITS * COUNT); // 28
}
