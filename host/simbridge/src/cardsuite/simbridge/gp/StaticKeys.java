package cardsuite.simbridge.gp;

import java.util.Arrays;

/**
 * The ISD's static key set: ENC, MAC and DEK with one key version number (GP Card Spec §10.3.3). Keys are 16 bytes
 * for SCP02 (two-key 3DES); 16, 24 or 32 bytes (AES) for SCP03.
 */
public final class StaticKeys {
    /** The public GlobalPlatform development key 40 41 … 4F, used for ENC, MAC and DEK unless configured. */
    public static final byte[] DEVELOPMENT_KEY = Bytes.fromHex("404142434445464748494A4B4C4D4E4F");
    public static final int DEFAULT_VERSION = 0x01;

    final byte[] enc;
    final byte[] mac;
    final byte[] dek;
    final int version;

    public StaticKeys(byte[] enc, byte[] mac, byte[] dek, int version) {
        if (version < 1 || version > 0x7F) {
            throw new IllegalArgumentException("a key version number is 1..127, got " + version);
        }
        for (byte[] key : new byte[][] {enc, mac, dek}) {
            if (key == null || (key.length != 16 && key.length != 24 && key.length != 32)) {
                throw new IllegalArgumentException("a key has 16, 24 or 32 bytes");
            }
        }
        this.enc = enc.clone();
        this.mac = mac.clone();
        this.dek = dek.clone();
        this.version = version;
    }

    public static StaticKeys development() {
        return new StaticKeys(DEVELOPMENT_KEY, DEVELOPMENT_KEY, DEVELOPMENT_KEY, DEFAULT_VERSION);
    }

    /**
     * Parses "ENC:MAC:DEK" in hex, or one hex key for all three (the form of CARDSUITE_SIM_KEYS).
     *
     * @throws IllegalArgumentException with a message that never contains the key text
     */
    public static StaticKeys parse(String text, int version) {
        String[] parts = text.trim().split(":", -1);
        if (parts.length != 1 && parts.length != 3) {
            throw new IllegalArgumentException("keys are ENC:MAC:DEK in hex, or one hex key for all three");
        }
        byte[][] keys = new byte[3][];
        for (int i = 0; i < 3; i++) {
            try {
                keys[i] = Bytes.fromHex(parts[parts.length == 1 ? 0 : i]);
            } catch (IllegalArgumentException e) {
                throw new IllegalArgumentException("a key is not hex"); // no key material in messages
            }
        }
        return new StaticKeys(keys[0], keys[1], keys[2], version);
    }

    public byte[] enc() {
        return enc.clone();
    }

    public byte[] mac() {
        return mac.clone();
    }

    public byte[] dek() {
        return dek.clone();
    }

    int length() {
        return enc.length;
    }

    boolean sameLengths() {
        return enc.length == mac.length && mac.length == dek.length;
    }

    @Override
    public String toString() {
        return "StaticKeys(version " + version + ", " + enc.length * 8 + "-bit" + (Arrays.equals(enc,
                DEVELOPMENT_KEY) ? ", development keys" : "") + ")";
    }
}
