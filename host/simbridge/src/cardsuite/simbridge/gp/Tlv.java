package cardsuite.simbridge.gp;

import java.io.ByteArrayOutputStream;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/** Minimal BER-TLV (GP Card Spec §11.1.5): one- and two-byte tags, lengths up to 3 bytes. */
final class Tlv {
    final int tag;
    final byte[] value;

    private Tlv(int tag, byte[] value) {
        this.tag = tag;
        this.value = value;
    }

    static byte[] encode(int tag, byte[]... values) {
        byte[] value = Bytes.concat(values);
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        if (tag > 0xFF) {
            out.write(tag >> 8);
        }
        out.write(tag);
        byte[] length = length(value.length);
        out.write(length, 0, length.length);
        out.write(value, 0, value.length);
        return out.toByteArray();
    }

    static byte[] length(int n) {
        if (n < 0x80) {
            return new byte[] {(byte) n};
        }
        if (n <= 0xFF) {
            return new byte[] {(byte) 0x81, (byte) n};
        }
        if (n <= 0xFFFF) {
            return new byte[] {(byte) 0x82, (byte) (n >> 8), (byte) n};
        }
        return new byte[] {(byte) 0x83, (byte) (n >> 16), (byte) (n >> 8), (byte) n};
    }

    /**
     * Data Grouping Identifiers as STORE DATA carries them (GP Card Spec §11.11.2.2, the EMV CPS format): a 2-byte
     * tag, a length of one byte or FF and two bytes, the value. Throws 6A80 when the data is not well formed.
     */
    static List<Tlv> parseDgis(byte[] data) {
        List<Tlv> list = new ArrayList<>();
        int at = 0;
        while (at < data.length) {
            require(at + 3 <= data.length);
            int tag = (data[at] & 0xFF) << 8 | (data[at + 1] & 0xFF);
            int length = data[at + 2] & 0xFF;
            at += 3;
            if (length == 0xFF) {
                require(at + 2 <= data.length);
                length = (data[at] & 0xFF) << 8 | (data[at + 1] & 0xFF);
                at += 2;
            }
            require(at + length <= data.length);
            list.add(new Tlv(tag, Arrays.copyOfRange(data, at, at + length)));
            at += length;
        }
        return list;
    }

    /** The top-level TLVs of {@code data}; throws 6A80 when it is not well formed. */
    static List<Tlv> parse(byte[] data) {
        List<Tlv> list = new ArrayList<>();
        int at = 0;
        while (at < data.length) {
            int tag = data[at++] & 0xFF;
            if ((tag & 0x1F) == 0x1F) {
                require(at < data.length);
                tag = tag << 8 | (data[at++] & 0xFF);
            }
            require(at < data.length);
            int length = data[at++] & 0xFF;
            if (length > 0x80) {
                int bytes = length & 0x7F;
                require(bytes <= 3 && at + bytes <= data.length);
                length = 0;
                for (int i = 0; i < bytes; i++) {
                    length = length << 8 | (data[at++] & 0xFF);
                }
            } else {
                require(length != 0x80);
            }
            require(at + length <= data.length);
            list.add(new Tlv(tag, Arrays.copyOfRange(data, at, at + length)));
            at += length;
        }
        return list;
    }

    static byte[] find(List<Tlv> list, int tag) {
        for (Tlv tlv : list) {
            if (tlv.tag == tag) {
                return tlv.value;
            }
        }
        return null;
    }

    private static void require(boolean ok) {
        if (!ok) {
            throw new GpException(Sw.WRONG_DATA, "malformed TLV");
        }
    }
}
