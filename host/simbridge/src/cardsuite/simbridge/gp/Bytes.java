package cardsuite.simbridge.gp;

import java.io.ByteArrayOutputStream;
import java.util.Arrays;

/** Byte-array helpers for the card manager: concatenation, hex, ISO 9797-1 padding method 2. */
public final class Bytes {
    private static final char[] DIGITS = "0123456789ABCDEF".toCharArray();

    private Bytes() {
    }

    public static byte[] concat(byte[]... parts) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        for (byte[] part : parts) {
            out.write(part, 0, part.length);
        }
        return out.toByteArray();
    }

    /** Appends 80 and zeroes up to a multiple of {@code block} (ISO/IEC 9797-1 padding method 2, always added). */
    public static byte[] pad80(byte[] data, int block) {
        byte[] padded = Arrays.copyOf(data, (data.length / block + 1) * block);
        padded[data.length] = (byte) 0x80;
        return padded;
    }

    /** Removes padding method 2; throws {@link GpException} 6A80 (bad data) when there is none. */
    public static byte[] unpad80(byte[] data) {
        int i = data.length - 1;
        while (i >= 0 && data[i] == 0) {
            i--;
        }
        if (i < 0 || data[i] != (byte) 0x80) {
            throw new GpException(Sw.WRONG_DATA, "no 80 padding in the decrypted data");
        }
        return Arrays.copyOf(data, i);
    }

    public static String hex(byte[] bytes) {
        char[] text = new char[bytes.length * 2];
        for (int i = 0; i < bytes.length; i++) {
            text[2 * i] = DIGITS[(bytes[i] >> 4) & 0xF];
            text[2 * i + 1] = DIGITS[bytes[i] & 0xF];
        }
        return new String(text);
    }

    public static byte[] fromHex(String text) {
        String digits = text.replaceAll("\\s", "");
        if (digits.length() % 2 != 0) {
            throw new IllegalArgumentException("odd number of hex digits: " + text);
        }
        byte[] bytes = new byte[digits.length() / 2];
        for (int i = 0; i < bytes.length; i++) {
            int high = Character.digit(digits.charAt(2 * i), 16);
            int low = Character.digit(digits.charAt(2 * i + 1), 16);
            if (high < 0 || low < 0) {
                throw new IllegalArgumentException("not hex: " + text);
            }
            bytes[i] = (byte) (high << 4 | low);
        }
        return bytes;
    }

    static byte[] xor(byte[] a, byte[] b) {
        byte[] out = new byte[a.length];
        for (int i = 0; i < a.length; i++) {
            out[i] = (byte) (a[i] ^ b[i]);
        }
        return out;
    }

    /** Constant-time comparison of a received MAC or cryptogram. */
    static boolean same(byte[] a, byte[] b) {
        return java.security.MessageDigest.isEqual(a, b);
    }
}
