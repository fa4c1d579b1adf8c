package cardsuite.simbridge.gp;

import java.util.Arrays;
import javax.crypto.Cipher;

/**
 * SCP03 cryptography (GP Card Spec v2.3.1 Amendment D v1.2, §4 and §6), static for host-side tests. AES-CMAC is
 * written here (RFC 4493 / NIST SP 800-38B): the JDK has no CMAC.
 */
public final class Scp03 {
    /** Derivation constants of Amendment D §4.1.5. */
    public static final int CONSTANT_CARD_CRYPTOGRAM = 0x00;
    public static final int CONSTANT_HOST_CRYPTOGRAM = 0x01;
    public static final int CONSTANT_CARD_CHALLENGE = 0x02;
    public static final int CONSTANT_S_ENC = 0x04;
    public static final int CONSTANT_S_MAC = 0x06;
    public static final int CONSTANT_S_RMAC = 0x07;

    private static final int BLOCK = 16;

    private Scp03() {
    }

    /**
     * Amendment D §4.1.5: NIST SP 800-108 KDF in counter mode with AES-CMAC. Each block's input is the label
     * (eleven 00 and the constant), a 00 separator, L in bits (2 bytes), the counter i (1 byte) and the context.
     */
    public static byte[] kdf(byte[] key, int constant, int lengthBits, byte[] context) {
        int blocks = (lengthBits + 127) / 128;
        byte[] out = new byte[blocks * BLOCK];
        for (int i = 1; i <= blocks; i++) {
            byte[] input = new byte[16 + context.length];
            input[11] = (byte) constant;
            input[12] = 0;
            input[13] = (byte) (lengthBits >> 8);
            input[14] = (byte) lengthBits;
            input[15] = (byte) i;
            System.arraycopy(context, 0, input, 16, context.length);
            System.arraycopy(aesCmac(key, input), 0, out, (i - 1) * BLOCK, BLOCK);
        }
        return Arrays.copyOf(out, lengthBits / 8);
    }

    /** §6.2.1: S-ENC (constant 04), S-MAC (06) or S-RMAC (07) from a static key; as long as the static key. */
    public static byte[] deriveSessionKey(byte[] staticKey, int constant, byte[] hostChallenge, byte[] cardChallenge) {
        return kdf(staticKey, constant, staticKey.length * 8, Bytes.concat(hostChallenge, cardChallenge));
    }

    /** §6.2.2.2: the card cryptogram, 8 bytes. */
    public static byte[] cardCryptogram(byte[] sessionMac, byte[] hostChallenge, byte[] cardChallenge) {
        return cardCryptogram(sessionMac, hostChallenge, cardChallenge, 64);
    }

    /** §6.2.2.2 with the length in bits: 64, or 128 in S16 mode (§6.2.1, i b1). */
    public static byte[] cardCryptogram(byte[] sessionMac, byte[] hostChallenge, byte[] cardChallenge, int bits) {
        return kdf(sessionMac, CONSTANT_CARD_CRYPTOGRAM, bits, Bytes.concat(hostChallenge, cardChallenge));
    }

    /** §6.2.2.3: the host cryptogram, 8 bytes. */
    public static byte[] hostCryptogram(byte[] sessionMac, byte[] hostChallenge, byte[] cardChallenge) {
        return hostCryptogram(sessionMac, hostChallenge, cardChallenge, 64);
    }

    /** §6.2.2.3 with the length in bits: 64, or 128 in S16 mode. */
    public static byte[] hostCryptogram(byte[] sessionMac, byte[] hostChallenge, byte[] cardChallenge, int bits) {
        return kdf(sessionMac, CONSTANT_HOST_CRYPTOGRAM, bits, Bytes.concat(hostChallenge, cardChallenge));
    }

    /** §6.2.2.1: a pseudo-random card challenge from K-ENC, the 3-byte sequence counter and the SD's AID. */
    public static byte[] pseudoRandomCardChallenge(byte[] staticEnc, byte[] sequenceCounter, byte[] sdAid) {
        return pseudoRandomCardChallenge(staticEnc, sequenceCounter, sdAid, 64);
    }

    /** §6.2.2.1 with the length in bits: 64, or 128 in S16 mode. */
    public static byte[] pseudoRandomCardChallenge(byte[] staticEnc, byte[] sequenceCounter, byte[] sdAid, int bits) {
        return kdf(staticEnc, CONSTANT_CARD_CHALLENGE, bits, Bytes.concat(sequenceCounter, sdAid));
    }

    /**
     * §6.2.4: AES-CMAC under S-MAC of the MAC chaining value (16 bytes, zero before EXTERNAL AUTHENTICATE) and the
     * command CLA INS P1 P2 Lc data (Lc counting the 8 MAC bytes). Returns all 16 bytes: the new chaining value;
     * its first 8 bytes are the C-MAC.
     */
    public static byte[] commandMac(byte[] sessionMac, byte[] chainingValue, byte[] command) {
        return aesCmac(sessionMac, Bytes.concat(chainingValue, command));
    }

    /** §6.2.6: the ICV for command encryption, AES-ECB under S-ENC of the 16-byte big-endian counter. */
    public static byte[] commandIcv(byte[] sessionEnc, long counter) {
        return aesEcb(sessionEnc, commandIcvBlock(counter));
    }

    /** §6.2.6: C-DECRYPTION of a command's data field; returns the data without its 80 padding. */
    public static byte[] decryptCommandData(byte[] sessionEnc, long counter, byte[] encrypted) {
        if (encrypted.length == 0 || encrypted.length % BLOCK != 0) {
            throw new GpException(Sw.WRONG_LENGTH, "encrypted data is not whole AES blocks");
        }
        return Bytes.unpad80(Scp02.crypt("AES/CBC/NoPadding", sessionEnc, "AES", commandIcv(sessionEnc, counter),
                encrypted, Cipher.DECRYPT_MODE));
    }

    /** The host's side of {@link #decryptCommandData} (for tests and drivers). */
    public static byte[] encryptCommandData(byte[] sessionEnc, long counter, byte[] plain) {
        return Scp02.crypt("AES/CBC/NoPadding", sessionEnc, "AES", commandIcv(sessionEnc, counter),
                Bytes.pad80(plain, BLOCK), Cipher.ENCRYPT_MODE);
    }

    /**
     * §6.2.5: the R-MAC, AES-CMAC under S-RMAC of the chaining value (the last command's full C-MAC), the response
     * data and the status word; the first 8 bytes are appended to the response.
     */
    public static byte[] responseMac(byte[] sessionRmac, byte[] chainingValue, byte[] responseData, int sw) {
        return responseMac(sessionRmac, chainingValue, responseData, sw, 8);
    }

    /** §6.2.5 with the R-MAC's length: 8, or 16 in S16 mode. */
    public static byte[] responseMac(byte[] sessionRmac, byte[] chainingValue, byte[] responseData, int sw,
                                     int length) {
        return Arrays.copyOf(aesCmac(sessionRmac, Bytes.concat(chainingValue, responseData,
                new byte[] {(byte) (sw >> 8), (byte) sw})), length);
    }

    /** §6.2.7: R-ENCRYPTION, AES-CBC under S-ENC, ICV from the command counter with its first byte set to 80. */
    public static byte[] encryptResponseData(byte[] sessionEnc, long counter, byte[] plain) {
        byte[] icv = commandIcvBlock(counter);
        icv[0] = (byte) 0x80;
        return Scp02.crypt("AES/CBC/NoPadding", sessionEnc, "AES", aesEcb(sessionEnc, icv), Bytes.pad80(plain, BLOCK),
                Cipher.ENCRYPT_MODE);
    }

    /** The host's side of {@link #encryptResponseData}. */
    public static byte[] decryptResponseData(byte[] sessionEnc, long counter, byte[] encrypted) {
        byte[] icv = commandIcvBlock(counter);
        icv[0] = (byte) 0x80;
        return Bytes.unpad80(Scp02.crypt("AES/CBC/NoPadding", sessionEnc, "AES", aesEcb(sessionEnc, icv), encrypted,
                Cipher.DECRYPT_MODE));
    }

    /** Amendment D §7.2.3: key values under the static DEK, AES-CBC with a zero ICV; whole blocks, else 6A80. */
    public static byte[] decryptCbcZeroIcv(byte[] dek, byte[] encrypted) {
        if (encrypted.length == 0 || encrypted.length % BLOCK != 0) {
            throw new GpException(Sw.WRONG_DATA, "encrypted data is not whole AES blocks");
        }
        return Scp02.crypt("AES/CBC/NoPadding", dek, "AES", new byte[BLOCK], encrypted, Cipher.DECRYPT_MODE);
    }

    /** The host's side of {@link #decryptCbcZeroIcv}. */
    public static byte[] encryptCbcZeroIcv(byte[] dek, byte[] plain) {
        return Scp02.crypt("AES/CBC/NoPadding", dek, "AES", new byte[BLOCK], plain, Cipher.ENCRYPT_MODE);
    }

    /** Amendment D §7.2.3.1: the key check value of an AES key, the first 3 bytes of AES-ECB of sixteen 01 bytes. */
    public static byte[] keyCheckValue(byte[] key) {
        byte[] ones = new byte[BLOCK];
        Arrays.fill(ones, (byte) 1);
        return Arrays.copyOf(aesEcb(key, ones), 3);
    }

    private static byte[] commandIcvBlock(long counter) {
        byte[] block = new byte[BLOCK];
        for (int i = 0; i < 8; i++) {
            block[BLOCK - 1 - i] = (byte) (counter >>> (8 * i));
        }
        return block;
    }

    /** AES-CMAC (RFC 4493) with a 16, 24 or 32-byte key: 16 bytes. */
    public static byte[] aesCmac(byte[] key, byte[] message) {
        byte[] k1 = doubled(aesEcb(key, new byte[BLOCK]));
        byte[] k2 = doubled(k1);
        int blocks = Math.max(1, (message.length + BLOCK - 1) / BLOCK);
        boolean complete = message.length > 0 && message.length % BLOCK == 0;
        byte[] last = Arrays.copyOfRange(message, (blocks - 1) * BLOCK, blocks * BLOCK); // zero-filled past the end
        if (complete) {
            last = Bytes.xor(last, k1);
        } else {
            last[message.length - (blocks - 1) * BLOCK] = (byte) 0x80;
            last = Bytes.xor(last, k2);
        }
        byte[] chain = new byte[BLOCK];
        for (int b = 0; b < blocks - 1; b++) {
            chain = aesEcb(key, Bytes.xor(chain, Arrays.copyOfRange(message, b * BLOCK, (b + 1) * BLOCK)));
        }
        return aesEcb(key, Bytes.xor(chain, last));
    }

    /** Subkey generation of RFC 4493 §2.3: shift left one bit, xor 0x87 if the top bit fell out. */
    private static byte[] doubled(byte[] block) {
        byte[] out = new byte[BLOCK];
        for (int i = 0; i < BLOCK; i++) {
            out[i] = (byte) ((block[i] << 1) | (i + 1 < BLOCK ? (block[i + 1] & 0xFF) >>> 7 : 0));
        }
        if ((block[0] & 0x80) != 0) {
            out[BLOCK - 1] ^= (byte) 0x87;
        }
        return out;
    }

    private static byte[] aesEcb(byte[] key, byte[] block) {
        return Scp02.crypt("AES/ECB/NoPadding", key, "AES", null, block, Cipher.ENCRYPT_MODE);
    }
}
