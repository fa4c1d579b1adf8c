package cardsuite.simbridge.gp;

import java.util.Arrays;

/**
 * SCP02 on the card (GP Card Spec v2.3.1 Appendix E). The i parameter's bits that matter here: b2 (02) C-MAC on the
 * unmodified APDU, b5 (10) ICV encryption, b7 (40) pseudo-random card challenge. i=15 and i=55 are the usual ones:
 * three keys, explicit initiation, C-MAC on the modified APDU, ICV encryption. No R-MAC.
 */
final class Scp02Channel extends SecureChannel {
    private int sequenceCounter;
    private byte[] sessionEnc;
    private byte[] sessionMac;
    private byte[] hostChallenge;
    private byte[] cardChallenge;
    private byte[] lastMac;

    private byte[] sessionDek;

    Scp02Channel(int parameter, byte[] sdAid) {
        super(parameter, sdAid);
    }

    /** What an SCP02 key set is: three 16-byte (two-key) triple DES keys. */
    static boolean fits(StaticKeys keys) {
        return keys.length() == 16 && keys.sameLengths();
    }

    @Override
    int protocol() {
        return 0x02;
    }

    byte[] sequenceCounter() {
        return new byte[] {(byte) (sequenceCounter >> 8), (byte) sequenceCounter};
    }

    /** §E.5.1.6: key version, SCP id, sequence counter, card challenge (6), card cryptogram (8). */
    @Override
    byte[] begin(byte[] hostChallenge) {
        byte[] seq = sequenceCounter();
        this.hostChallenge = hostChallenge.clone();
        sessionEnc = Scp02.deriveSessionKey(keys.enc, Scp02.CONSTANT_S_ENC, seq);
        sessionMac = Scp02.deriveSessionKey(keys.mac, Scp02.CONSTANT_C_MAC, seq);
        sessionDek = Scp02.deriveSessionKey(keys.dek, Scp02.CONSTANT_DEK, seq);
        // §E.4.2.1 with i b7: the card challenge is a MAC over the SD's AID under the C-MAC session key
        cardChallenge = (parameter & 0x40) != 0
                ? Arrays.copyOf(Scp02.retailMac(sessionMac, new byte[8], sdAid), 6) : random(6);
        byte[] cryptogram = Scp02.cardCryptogram(sessionEnc, hostChallenge, seq, cardChallenge);
        return Bytes.concat(new byte[] {(byte) keys.version, 0x02}, seq, cardChallenge, cryptogram);
    }

    @Override
    byte[] decryptSensitive(byte[] encrypted) {
        return Scp02.decryptEcb(sessionDek, encrypted);
    }

    @Override
    boolean supportsLevel(int level) {
        return level == 0x00 || level == C_MAC || level == (C_MAC | C_DECRYPTION);
    }

    /** §E.5.2: host cryptogram, then the C-MAC with a zero ICV; it becomes the first ICV. */
    @Override
    void authenticate(CommandApdu command) {
        byte[] cryptogram = Arrays.copyOf(command.data, 8);
        byte[] expected = Scp02.hostCryptogram(sessionEnc, sequenceCounter(), cardChallenge, hostChallenge);
        if (!Bytes.same(cryptogram, expected)) {
            throw new GpException(Sw.AUTH_FAILED, "wrong host cryptogram");
        }
        byte[] mac = Arrays.copyOfRange(command.data, 8, 16);
        if (!Bytes.same(mac, macOf(command, cryptogram, new byte[8]))) {
            throw new GpException(Sw.SECURITY_NOT_SATISFIED, "wrong C-MAC on EXTERNAL AUTHENTICATE");
        }
        lastMac = mac;
        sequenceCounter = (sequenceCounter + 1) & 0xFFFF; // §E.4.1: one step per opened session
    }

    /** §E.4.4 and §E.4.6: decrypt first (the host MACs the plain command), then check the C-MAC. */
    @Override
    CommandApdu verifyAndDecrypt(CommandApdu command) {
        byte[] body = Arrays.copyOf(command.data, command.data.length - 8);
        byte[] mac = Arrays.copyOfRange(command.data, command.data.length - 8, command.data.length);
        if ((securityLevel & C_DECRYPTION) != 0 && body.length > 0) {
            body = Scp02.decryptCommandData(sessionEnc, body);
        }
        byte[] icv = (parameter & 0x10) != 0 ? Scp02.encryptIcv(sessionMac, lastMac) : lastMac;
        if (!Bytes.same(mac, macOf(command, body, icv))) {
            throw new GpException(Sw.SECURITY_NOT_SATISFIED, "wrong C-MAC");
        }
        lastMac = mac;
        return command.withData(command.cla & ~0x04, body);
    }

    /** The C-MAC over the modified APDU (CLA with b3, Lc with the MAC) or, with i b2, the unmodified one. */
    private byte[] macOf(CommandApdu command, byte[] body, byte[] icv) {
        CommandApdu covered = (parameter & 0x02) != 0 ? command.withData(command.cla & ~0x04, body) : command;
        int lc = (parameter & 0x02) != 0 ? body.length : body.length + 8;
        return Scp02.retailMac(sessionMac, icv, covered.headerAndData(lc, body));
    }
}
