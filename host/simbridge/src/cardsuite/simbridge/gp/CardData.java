package cardsuite.simbridge.gp;

/** The ISD's data objects: FCI, Card Recognition Data, Key Information Template, CPLC, CIN. */
final class CardData {
    private static final byte[] OID_GP_CARD = Bytes.fromHex("2A864886FC6B01");          // 1.2.840.114283.1
    private static final byte[] OID_GP_VERSION = Bytes.fromHex("2A864886FC6B02020301");  // GP 2.3.1
    private static final byte[] OID_ID_SCHEME = Bytes.fromHex("2A864886FC6B03");         // 1.2.840.114283.3
    private static final byte[] OID_SCP = Bytes.fromHex("2A864886FC6B04");               // + scp + i
    // 1.3.6.1.4.1.42.2.110.1.3: Java Card 3
    private static final byte[] OID_JAVA_CARD_3 = Bytes.fromHex("2B060104012A026E0103");

    private CardData() {
    }

    /** GP Card Spec §H.2 (Table H-1): the Card Recognition Data inside tag 73. */
    static byte[] recognitionData(int scp, int i) {
        return Tlv.encode(0x73,
                Tlv.encode(0x06, OID_GP_CARD),
                Tlv.encode(0x60, Tlv.encode(0x06, OID_GP_VERSION)),
                Tlv.encode(0x63, Tlv.encode(0x06, OID_ID_SCHEME)),
                Tlv.encode(0x64, Tlv.encode(0x06, OID_SCP, new byte[] {(byte) scp, (byte) i})),
                Tlv.encode(0x66, Tlv.encode(0x06, OID_JAVA_CARD_3)));
    }

    /** §11.9.3.1: the SELECT response of a Security Domain (6F: 84 AID, A5: 73 recognition data, 9F65 block size). */
    static byte[] fci(byte[] aid, int scp, int i) {
        return Tlv.encode(0x6F, Tlv.encode(0x84, aid),
                Tlv.encode(0xA5, recognitionData(scp, i), Tlv.encode(0x9F6E, Bytes.fromHex("0000000000000000")),
                        Tlv.encode(0x9F65, new byte[] {(byte) 0xFF})));
    }

    /**
     * Card Capability Information (tag 67, GP Card Spec v2.3.1 §H.4 / Amendment E): A0 the secure channel (80 the
     * protocol, 81 its i parameter, for SCP03 82 the AES key lengths, b1 128, b2 192, b3 256), 81 the privileges a
     * security domain can have here (the ISD's, and DAP Verification and Mandated DAP Verification for an SSD), 82
     * the application privileges this card acts on (Card Reset: the default selection), 83 the Load File Data Block
     * Hash algorithms (01 SHA-1, 02 SHA-256, 03 SHA-384, 04 SHA-512), 87 the DAP verification schemes (b1: RSA
     * 1024 with SHA-1, Scheme 1). No token or receipt ciphers: this card checks no tokens and issues no receipts.
     */
    static byte[] capabilities(int scp, int i, byte[] isdPrivileges) {
        byte[] channel = Bytes.concat(Tlv.encode(0x80, new byte[] {(byte) scp}), Tlv.encode(0x81, new byte[] {(byte) i}),
                scp == 0x03 ? Tlv.encode(0x82, new byte[] {0x07}) : new byte[0]);
        byte[] domainPrivileges = isdPrivileges.clone();
        domainPrivileges[0] |= Registry.DAP_VERIFICATION | Registry.MANDATED_DAP;
        return Tlv.encode(0x67, Tlv.encode(0xA0, channel), Tlv.encode(0x81, domainPrivileges),
                Tlv.encode(0x82, new byte[] {Registry.CARD_RESET, 0, 0}), Tlv.encode(0x83, new byte[] {1, 2, 3, 4}),
                Tlv.encode(0x87, new byte[] {0x01}));
    }

    /** §11.3.3.1 (Table 11-31): Key Information Template, one C0 entry (id, version, type, length) per key. */
    static byte[] keyInformation(java.util.List<byte[]> keys) {
        byte[] entries = new byte[0];
        for (byte[] key : keys) {
            entries = Bytes.concat(entries, Tlv.encode(0xC0, key));
        }
        return Tlv.encode(0xE0, entries);
    }

    /**
     * The Card Production Life Cycle data (tag 9F7F, 42 bytes, the layout of the GP 2.1.1 era that GP clients
     * decode): fabricator, IC type, OS, dates (YDDD), the IC serial number (per simulated card), batch, module and
     * personaliser fields.
     */
    static byte[] cplc(byte[] serial, byte[] prePerso, byte[] perso) {
        byte[] data = Bytes.concat(
                Bytes.fromHex("CA5D"),          // IC fabricator: the cardsuite simulator
                Bytes.fromHex("0001"),          // IC type
                Bytes.fromHex("0305"),          // operating system: Java Card 3.0.5 (jCardSim)
                Bytes.fromHex("5032"),          // OS release date 2025-02-01
                Bytes.fromHex("0001"),          // OS release level
                Bytes.fromHex("5032"),          // IC fabrication date
                serial,                         // IC serial number (4)
                Bytes.fromHex("0001"),          // IC batch identifier
                Bytes.fromHex("0000"),          // IC module fabricator
                Bytes.fromHex("5032"),          // IC module packaging date
                Bytes.fromHex("0000"),          // ICC manufacturer
                Bytes.fromHex("5032"),          // IC embedding date
                prePerso,                       // IC pre-personaliser, pre-perso date, equipment id (8)
                perso);                         // IC personaliser, personalisation date, equipment id (8)
        return Tlv.encode(0x9F7F, data);
    }

    /** §H.6: the Card Image Number of a card not personalised yet, derived from the serial (10 bytes). */
    static byte[] cinValue(byte[] serial) {
        return Bytes.concat(Bytes.fromHex("CA5D0001"), serial, Bytes.fromHex("0000"));
    }

    /** The key diversification data at the start of INITIALIZE UPDATE's response (10 bytes). */
    static byte[] keyDiversificationData(byte[] serial) {
        return Bytes.concat(Bytes.fromHex("CA5D0001"), serial, Bytes.fromHex("0001"));
    }
}
