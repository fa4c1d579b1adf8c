package cardsuite.simbridge;

/**
 * The length fields of a command APDU, checked before anything parses them: jCardSim's own parser indexes past
 * the end of a malformed command (an ArrayIndexOutOfBoundsException into the host) or overruns its buffer.
 * A card answers such a command with 6700 (ISO 7816-4 5.6, wrong length), before any applet sees it.
 */
final class ApduFormat {
    /** CLA INS P1 P2: the header every command has (ISO 7816-3 12.1.2). */
    static final int HEADER = 4;
    /** The largest Nc of the extended APDU buffer jCardSim gives applets implementing ExtendedLength. */
    static final int MAX_EXTENDED_NC = Short.MAX_VALUE;
    /** ISO 7816-4 8.2.1.2 (and 5.3.1.1): a DF name, the AID a SELECT by name carries, has 1 to 16 bytes. */
    static final int MAX_DF_NAME = 16;
    private static final int INS_SELECT = 0xA4;
    private static final int P1_BY_DF_NAME = 0x04;

    private ApduFormat() {
    }

    /**
     * Nc, the number of command data bytes, of a well-formed command; -1 when its length fields do not match its
     * length. The cases of ISO 7816-3 12.1.3: after the header, nothing (1), Le (2S), Lc data (3S), Lc data Le
     * (4S), 00 Le1 Le2 (2E), 00 Lc1 Lc2 data (3E), 00 Lc1 Lc2 data Le1 Le2 (4E); Lc is never 0.
     */
    static int dataLength(byte[] command) {
        int length = command.length;
        if (length < HEADER) {
            return -1;
        }
        if (length <= HEADER + 1) {
            return 0; // case 1 or 2S
        }
        int b1 = command[HEADER] & 0xFF;
        if (b1 != 0) {
            return length == HEADER + 1 + b1 || length == HEADER + 2 + b1 ? b1 : -1;
        }
        if (length == HEADER + 3) {
            return 0; // case 2E
        }
        if (length < HEADER + 3) {
            return -1; // 00 then one byte: neither a short nor an extended length
        }
        int nc = ((command[HEADER + 1] & 0xFF) << 8) | (command[HEADER + 2] & 0xFF);
        if (nc == 0 || nc > MAX_EXTENDED_NC) {
            return -1;
        }
        return length == HEADER + 3 + nc || length == HEADER + 5 + nc ? nc : -1;
    }

    /** Whether the card must answer 6700 without dispatching: bad length fields, or a SELECT by a name too long. */
    static boolean wrongLength(byte[] command) {
        int nc = dataLength(command);
        if (nc < 0) {
            return true;
        }
        boolean selectByName = (command[1] & 0xFF) == INS_SELECT && (command[2] & 0xFF) == P1_BY_DF_NAME;
        return selectByName && nc > MAX_DF_NAME;
    }
}
