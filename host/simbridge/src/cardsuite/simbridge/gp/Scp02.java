package cardsuite.simbridge.gp;

import java.security.GeneralSecurityException;
import java.util.Arrays;
import javax.crypto.Cipher;
import javax.crypto.spec.IvParameterSpec;
import javax.crypto.spec.SecretKeySpec;

/**
 * SCP02 cryptography (GP Card Spec v2.3.1 Appendix E), as static functions so that host-side tests can check them
 * against published vectors. Keys are 16-byte two-key triple DES keys.
 */
public final class Scp02 {
    /** Derivation constants of §E.4.1. */
    public static final int CONSTANT_C_MAC = 0x0101;
    public static final int CONSTANT_R_MAC = 0x0102;
    public static final int CONSTANT_S_ENC = 0x0182;
    public static final int CONSTANT_DEK = 0x0181;

    private static final byte[] ZERO_ICV = new byte[8];

    private Scp02() {
    }

    /** §E.4.1: 3DES-CBC (zero ICV) of constant(2) | sequence counter(2) | twelve 00 under the static key. */
    public static byte[] deriveSessionKey(byte[] staticKey, int constant, byte[] sequenceCounter) {
        byte[] data = new byte[16];
        data[0] = (byte) (constant >> 8);
        data[1] = (byte) constant;
        data[2] = sequenceCounter[0];
        data[3] = sequenceCounter[1];
        return tripleDesCbc(staticKey, ZERO_ICV, data);
    }

    /** §E.4.2.1: full 3DES MAC under S-ENC of host challenge | sequence counter | card challenge. */
    public static byte[] cardCryptogram(byte[] sessionEnc, byte[] hostChallenge, byte[] sequenceCounter,
                                        byte[] cardChallenge) {
        return fullTripleDesMac(sessionEnc, Bytes.concat(hostChallenge, sequenceCounter, cardChallenge));
    }

    /** §E.4.2.2: full 3DES MAC under S-ENC of sequence counter | card challenge | host challenge. */
    public static byte[] hostCryptogram(byte[] sessionEnc, byte[] sequenceCounter, byte[] cardChallenge,
                                        byte[] hostChallenge) {
        return fullTripleDesMac(sessionEnc, Bytes.concat(sequenceCounter, cardChallenge, hostChallenge));
    }

    /** ISO/IEC 9797-1 MAC algorithm 1 with 3DES, zero ICV, padding method 2: the last CBC block. */
    public static byte[] fullTripleDesMac(byte[] key, byte[] data) {
        byte[] cbc = tripleDesCbc(key, ZERO_ICV, Bytes.pad80(data, 8));
        return Arrays.copyOfRange(cbc, cbc.length - 8, cbc.length);
    }

    /**
     * §E.4.4: the C-MAC, ISO/IEC 9797-1 MAC algorithm 3 ("retail MAC"): single DES-CBC with the key's first half
     * over all blocks but the last, 3DES on the last; padding method 2.
     *
     * @param icv 8 bytes: zero for EXTERNAL AUTHENTICATE, then the previous C-MAC (encrypted, see {@link #encryptIcv})
     * @param command CLA INS P1 P2 Lc data, as the MAC covers it
     */
    public static byte[] retailMac(byte[] sessionMac, byte[] icv, byte[] command) {
        byte[] padded = Bytes.pad80(command, 8);
        byte[] chain = icv.clone();
        if (padded.length > 8) {
            byte[] head = desCbc(Arrays.copyOf(sessionMac, 8), chain, Arrays.copyOf(padded, padded.length - 8));
            chain = Arrays.copyOfRange(head, head.length - 8, head.length);
        }
        return tripleDesCbc(sessionMac, chain, Arrays.copyOfRange(padded, padded.length - 8, padded.length));
    }

    /** §E.4.4 (i bit b5): the next command's ICV is the previous C-MAC encrypted with single DES (key's first half). */
    public static byte[] encryptIcv(byte[] sessionMac, byte[] mac) {
        return crypt("DES/ECB/NoPadding", Arrays.copyOf(sessionMac, 8), "DES", null, mac, Cipher.ENCRYPT_MODE);
    }

    /** §E.4.6: C-DECRYPTION, 3DES-CBC with S-ENC and a zero ICV; returns the data without its 80 padding. */
    public static byte[] decryptCommandData(byte[] sessionEnc, byte[] encrypted) {
        if (encrypted.length == 0 || encrypted.length % 8 != 0) {
            throw new GpException(Sw.WRONG_LENGTH, "encrypted data is not whole 3DES blocks");
        }
        return Bytes.unpad80(crypt("DESede/CBC/NoPadding", tripleKey(sessionEnc), "DESede", ZERO_ICV, encrypted,
                Cipher.DECRYPT_MODE));
    }

    /** The host's side of {@link #decryptCommandData} (for tests and drivers). */
    public static byte[] encryptCommandData(byte[] sessionEnc, byte[] plain) {
        return tripleDesCbc(sessionEnc, ZERO_ICV, Bytes.pad80(plain, 8));
    }

    /** §E.4.7: sensitive data (key values) are 3DES-ECB encrypted under the session DEK. */
    public static byte[] decryptEcb(byte[] key, byte[] encrypted) {
        if (encrypted.length == 0 || encrypted.length % 8 != 0) {
            throw new GpException(Sw.WRONG_DATA, "encrypted data is not whole 3DES blocks");
        }
        return crypt("DESede/ECB/NoPadding", tripleKey(key), "DESede", null, encrypted, Cipher.DECRYPT_MODE);
    }

    /** The host's side of {@link #decryptEcb}. */
    public static byte[] encryptEcb(byte[] key, byte[] plain) {
        return crypt("DESede/ECB/NoPadding", tripleKey(key), "DESede", null, plain, Cipher.ENCRYPT_MODE);
    }

    /** §E.4.7 / B.6: the key check value of a triple DES key, the first 3 bytes of 3DES-ECB of eight 00 bytes. */
    public static byte[] keyCheckValue(byte[] key) {
        return Arrays.copyOf(encryptEcb(key, new byte[8]), 3);
    }

    static byte[] tripleDesCbc(byte[] key, byte[] icv, byte[] data) {
        return crypt("DESede/CBC/NoPadding", tripleKey(key), "DESede", icv, data, Cipher.ENCRYPT_MODE);
    }

    private static byte[] desCbc(byte[] key, byte[] icv, byte[] data) {
        return crypt("DES/CBC/NoPadding", key, "DES", icv, data, Cipher.ENCRYPT_MODE);
    }

    /** A 16-byte key K1|K2 as the 24-byte K1|K2|K1 the JDK wants; 24-byte keys pass through. */
    private static byte[] tripleKey(byte[] key) {
        if (key.length == 24) {
            return key;
        }
        if (key.length != 16) {
            throw new IllegalArgumentException("a 3DES key has 16 or 24 bytes, got " + key.length);
        }
        return Bytes.concat(key, Arrays.copyOf(key, 8));
    }

    static byte[] crypt(String transformation, byte[] key, String algorithm, byte[] icv, byte[] data, int mode) {
        try {
            Cipher cipher = Cipher.getInstance(transformation);
            SecretKeySpec spec = new SecretKeySpec(key, algorithm);
            if (icv == null) {
                cipher.init(mode, spec);
            } else {
                cipher.init(mode, spec, new IvParameterSpec(icv));
            }
            return cipher.doFinal(data);
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException(transformation + " failed", e);
        }
    }
}
