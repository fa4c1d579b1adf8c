package cardsuite.simbridge.gp;

/** The status words the card manager answers (GP Card Spec v2.3.1 §11.1.3 and each command's table). */
final class Sw {
    static final int OK = 0x9000;
    static final int MORE_DATA = 0x6310;             // GET STATUS: more entries, ask again with P2 b1 set
    static final int AUTH_FAILED = 0x6300;           // EXTERNAL AUTHENTICATE: wrong host cryptogram
    static final int CARD_LOCKED_WARNING = 0x6283;   // SELECT of the ISD while the card is CARD_LOCKED
    static final int IMPORT_NOT_FOUND = 0x6438;      // LOAD: an imported package (or its version) is not on the card
    static final int WRONG_LENGTH = 0x6700;
    static final int SECURITY_NOT_SATISFIED = 0x6982;
    static final int AUTH_BLOCKED = 0x6983;          // too many failed authentications
    static final int CONDITIONS_NOT_SATISFIED = 0x6985;
    static final int WRONG_DATA = 0x6A80;
    static final int NOT_FOUND = 0x6A82;
    static final int NOT_ENOUGH_MEMORY = 0x6A84;
    static final int WRONG_P1P2 = 0x6A86;
    static final int REFERENCED_DATA_NOT_FOUND = 0x6A88;
    static final int INS_NOT_SUPPORTED = 0x6D00;
    static final int CLA_NOT_SUPPORTED = 0x6E00;
    static final int ALGORITHM_NOT_SUPPORTED = 0x9484; // PUT KEY: a key type the card does not take (§11.8.3.2)
    static final int INVALID_KCV = 0x9485;             // PUT KEY: the key check value does not match

    private Sw() {
    }
}
