package cardsuite.simbridge.gp;

import java.util.Arrays;

/**
 * SCP03 on the card (GP Card Spec v2.3.1 Amendment D v1.2). The i parameter: b1 (01) S16 mode (16-byte challenges,
 * cryptograms and MACs, §6.2.1), b5 (10) pseudo-random card challenge with a 3-byte sequence counter in the
 * INITIALIZE UPDATE response, b6 (20) R-MAC, b7 (40) R-ENCRYPTION; so i=00, 10, 30 or 70, each also with b1. Security levels: 00, 01 (C-MAC), 03 (C-DECRYPTION), and with i b6/b7 11, 13, 33.
 */
final class Scp03Channel extends SecureChannel {
    private int sequenceCounter;
    private byte[] sessionEnc;
    private byte[] sessionMac;
    private byte[] sessionRmac;
    private byte[] hostChallenge;
    private byte[] cardChallenge;
    private byte[] chainingValue;
    private long encryptionCounter;

    Scp03Channel(int parameter, byte[] sdAid) {
        super(parameter, sdAid);
    }

    private boolean s16() {
        return (parameter & 0x01) != 0;
    }

    private int bits() {
        return s16() ? 128 : 64;
    }

    @Override
    int challengeLength() {
        return s16() ? 16 : 8;
    }

    @Override
    int cryptogramLength() {
        return challengeLength();
    }

    @Override
    int macLength() {
        return challengeLength();
    }

    /** What an SCP03 key set is: three AES keys of one length. */
    static boolean fits(StaticKeys keys) {
        return keys.sameLengths();
    }

    /** The 3-byte counter of the pseudo-random card challenge (i b5), its last value. */
    byte[] sequenceCounter() {
        return new byte[] {(byte) (sequenceCounter >> 16), (byte) (sequenceCounter >> 8), (byte) sequenceCounter};
    }

    @Override
    int protocol() {
        return 0x03;
    }

    /** Amendment D §7.1.1.6: key version, 03, i, card challenge, card cryptogram [, sequence counter]. */
    @Override
    byte[] begin(byte[] hostChallenge) {
        this.hostChallenge = hostChallenge.clone();
        byte[] seq = null;
        if ((parameter & 0x10) != 0) {
            sequenceCounter = (sequenceCounter + 1) & 0xFFFFFF; // §6.2.2.1: a new counter value per challenge
            seq = new byte[] {(byte) (sequenceCounter >> 16), (byte) (sequenceCounter >> 8), (byte) sequenceCounter};
            cardChallenge = Scp03.pseudoRandomCardChallenge(keys.enc, seq, sdAid, bits());
        } else {
            cardChallenge = random(challengeLength());
        }
        sessionEnc = Scp03.deriveSessionKey(keys.enc, Scp03.CONSTANT_S_ENC, hostChallenge, cardChallenge);
        sessionMac = Scp03.deriveSessionKey(keys.mac, Scp03.CONSTANT_S_MAC, hostChallenge, cardChallenge);
        sessionRmac = Scp03.deriveSessionKey(keys.mac, Scp03.CONSTANT_S_RMAC, hostChallenge, cardChallenge);
        byte[] cryptogram = Scp03.cardCryptogram(sessionMac, hostChallenge, cardChallenge, bits());
        byte[] head = {(byte) keys.version, 0x03, (byte) parameter};
        return seq == null ? Bytes.concat(head, cardChallenge, cryptogram)
                : Bytes.concat(head, cardChallenge, cryptogram, seq);
    }

    @Override
    byte[] decryptSensitive(byte[] encrypted) {
        return Scp03.decryptCbcZeroIcv(keys.dek, encrypted);
    }

    @Override
    boolean supportsLevel(int level) {
        boolean rmac = (parameter & 0x20) != 0;
        boolean renc = (parameter & 0x40) != 0;
        switch (level) {
            case 0x00: case 0x01: case 0x03: return true;
            case 0x11: case 0x13: return rmac;
            case 0x33: return rmac && renc;
            default: return false;
        }
    }

    @Override
    void authenticate(CommandApdu command) {
        int n = cryptogramLength();
        byte[] cryptogram = Arrays.copyOf(command.data, n);
        if (!Bytes.same(cryptogram, Scp03.hostCryptogram(sessionMac, hostChallenge, cardChallenge, bits()))) {
            throw new GpException(Sw.AUTH_FAILED, "wrong host cryptogram");
        }
        byte[] full = Scp03.commandMac(sessionMac, new byte[16], command.headerAndData(n + macLength(), cryptogram));
        if (!Bytes.same(Arrays.copyOfRange(command.data, n, n + macLength()), Arrays.copyOf(full, macLength()))) {
            throw new GpException(Sw.SECURITY_NOT_SATISFIED, "wrong C-MAC on EXTERNAL AUTHENTICATE");
        }
        chainingValue = full;
        encryptionCounter = 0;
    }

    /** §6.2.4 then §6.2.6: the C-MAC covers the encrypted data; the counter moves on every command. */
    @Override
    CommandApdu verifyAndDecrypt(CommandApdu command) {
        byte[] body = Arrays.copyOf(command.data, command.data.length - macLength());
        byte[] full = Scp03.commandMac(sessionMac, chainingValue, command.headerAndData(command.data.length, body));
        if (!Bytes.same(Arrays.copyOfRange(command.data, body.length, command.data.length),
                Arrays.copyOf(full, macLength()))) {
            throw new GpException(Sw.SECURITY_NOT_SATISFIED, "wrong C-MAC");
        }
        chainingValue = full;
        if ((securityLevel & C_DECRYPTION) != 0) {
            encryptionCounter++;
            if (body.length > 0) {
                body = Scp03.decryptCommandData(sessionEnc, encryptionCounter, body);
            }
        }
        return command.withData(command.cla & ~0x04, body);
    }

    /** §6.2.5 and §6.2.7: R-ENC of the data (when there is any), then the R-MAC over data and status word. */
    @Override
    byte[] wrapResponse(byte[] data, int sw) {
        if (!isAuthenticated()) {
            return data;
        }
        if ((securityLevel & R_ENCRYPTION) != 0 && data.length > 0) {
            data = Scp03.encryptResponseData(sessionEnc, encryptionCounter, data);
        }
        if ((securityLevel & R_MAC) != 0) {
            data = Bytes.concat(data, Scp03.responseMac(sessionRmac, chainingValue, data, sw, macLength()));
        }
        return data;
    }
}
