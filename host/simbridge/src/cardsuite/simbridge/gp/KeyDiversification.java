package cardsuite.simbridge.gp;

import java.util.Arrays;
import java.util.Locale;

/**
 * An issued card's static keys derived from the issuer's master key and the card's key diversification data (10
 * bytes, GET DATA CF), as the host derives them (gp --key-kdf, cardsuite.gp.keys): key n is 1 ENC, 2 MAC, 3 DEK.
 * <ul>
 * <li>emv (EMV CPS / CPG 2.1): 3DES-ECB under the master of kdd[4..9] | F0 | n | kdd[4..9] | 0F | n;</li>
 * <li>visa2: the same with kdd[0..1] | kdd[4..7] in place of kdd[4..9];</li>
 * <li>kdf3 (SCP03, AES): AES-CMAC of counter | 00 00 00 n 00 | kdd in counter mode (NIST SP 800-108), as long as
 * the master key.</li>
 * </ul>
 */
public final class KeyDiversification {
    private KeyDiversification() {
    }

    /**
     * @throws IllegalArgumentException for an unknown scheme, a master key or data of the wrong length (the
     *     message never holds key material)
     */
    public static StaticKeys derive(String kdf, byte[] master, byte[] kdd, int version) {
        if (kdd.length != 10) {
            throw new IllegalArgumentException("key diversification data has 10 bytes");
        }
        byte[][] keys = new byte[3][];
        for (int n = 1; n <= 3; n++) {
            keys[n - 1] = key(kdf.toLowerCase(Locale.ROOT), master, kdd, n);
        }
        return new StaticKeys(keys[0], keys[1], keys[2], version);
    }

    private static byte[] key(String kdf, byte[] master, byte[] kdd, int n) {
        switch (kdf) {
            case "emv": return des(master, Arrays.copyOfRange(kdd, 4, 10), n);
            case "visa2": return des(master, Bytes.concat(Arrays.copyOfRange(kdd, 0, 2), Arrays.copyOfRange(kdd, 4, 8)), n);
            case "kdf3": return kdf3(master, kdd, n);
            default: throw new IllegalArgumentException("key diversification emv, visa2 or kdf3, got " + kdf);
        }
    }

    private static byte[] des(byte[] master, byte[] part, int n) {
        if (master.length != 16) {
            throw new IllegalArgumentException("a 3DES master key has 16 bytes");
        }
        byte[] data = Bytes.concat(part, new byte[] {(byte) 0xF0, (byte) n}, part, new byte[] {0x0F, (byte) n});
        return Scp02.encryptEcb(master, data);
    }

    private static byte[] kdf3(byte[] master, byte[] kdd, int n) {
        if (master.length != 16 && master.length != 24 && master.length != 32) {
            throw new IllegalArgumentException("an AES master key has 16, 24 or 32 bytes");
        }
        byte[] out = new byte[0];
        for (int counter = 1; out.length < master.length; counter++) {
            out = Bytes.concat(out, Scp03.aesCmac(master, Bytes.concat(new byte[] {(byte) counter, 0, 0, 0, (byte) n, 0},
                    kdd)));
        }
        return Arrays.copyOf(out, master.length);
    }
}
