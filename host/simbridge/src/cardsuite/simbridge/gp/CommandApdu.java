package cardsuite.simbridge.gp;

import java.util.Arrays;

/** A short command APDU split into its fields (ISO/IEC 7816-4 §5.1; extended length is not used by GP clients). */
final class CommandApdu {
    final int cla;
    final int ins;
    final int p1;
    final int p2;
    final byte[] data;

    CommandApdu(int cla, int ins, int p1, int p2, byte[] data) {
        this.cla = cla & 0xFF;
        this.ins = ins & 0xFF;
        this.p1 = p1 & 0xFF;
        this.p2 = p2 & 0xFF;
        this.data = data;
    }

    /** @throws GpException 6700 for a malformed or extended-length APDU */
    static CommandApdu parse(byte[] raw) {
        if (raw.length < 4) {
            throw new GpException(Sw.WRONG_LENGTH, "an APDU has at least 4 bytes");
        }
        byte[] data = new byte[0];
        if (raw.length > 5) {
            int lc = raw[4] & 0xFF;
            if (lc == 0 || (raw.length != 5 + lc && raw.length != 6 + lc)) {
                throw new GpException(Sw.WRONG_LENGTH, "Lc does not match the APDU's length");
            }
            data = Arrays.copyOfRange(raw, 5, 5 + lc);
        }
        return new CommandApdu(raw[0], raw[1], raw[2], raw[3], data);
    }

    boolean secureMessaging() {
        return (cla & 0x04) != 0;
    }

    /** CLA INS P1 P2 Lc data with this Lc, as the MACs cover a command. */
    byte[] headerAndData(int lc, byte[] body) {
        return Bytes.concat(new byte[] {(byte) cla, (byte) ins, (byte) p1, (byte) p2, (byte) lc}, body);
    }

    CommandApdu withData(int newCla, byte[] newData) {
        return new CommandApdu(newCla, ins, p1, p2, newData);
    }
}
