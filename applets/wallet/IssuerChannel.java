package cardsuite.wallet;

import javacard.framework.APDU;
import javacard.framework.ISO7816;
import javacard.framework.ISOException;
import javacard.framework.JCSystem;
import javacard.framework.Util;
import javacard.security.DESKey;
import javacard.security.KeyBuilder;
import javacard.security.RandomData;
import javacard.security.Signature;
import javacardx.crypto.Cipher;

/**
 * The issuer's secure channel ([P000], section 4.2), owning its keys and crypto engines.
 *
 * Opening: INITIALIZE UPDATE carries the host challenge r1; the card answers its challenge r2 and a
 * card cryptogram; EXTERNAL AUTHENTICATE carries the host cryptogram. Both sides thereby prove they
 * hold the master keys, so nobody without them opens a session (the paper leaves authentication of
 * the session itself open). Session keys, as in the paper:
 *   R_d = r2_MSB ‖ r1_LSB ‖ r2_LSB ‖ r1_MSB  (the paper calls the left 4 bytes of a challenge LSB and
 *                                            the right 4 bytes MSB, so R_d = r2[4..8] ‖ r1[0..4] ‖
 *                                            r2[0..4] ‖ r1[4..8], the GlobalPlatform SCP01 order)
 *   S_E = 3DES-ECB(K_E, R_d), S_A = 3DES-ECB(K_A, R_d)
 *   card cryptogram = MAC(S_A, r1 ‖ r2), host cryptogram = MAC(S_A, r2 ‖ r1)
 *
 * Commands (CLA 84): data = 3DES-CBC(S_E, ICV 0, D ‖ pad) ‖ MAC, where
 *   MAC = ISO/IEC 9797-1 MAC algorithm 3 (retail MAC) with S_A over C ‖ CLA ‖ INS ‖ P1 ‖ P2 ‖ Lc ‖ D_e.
 * Two fixes to the paper: padding is ISO/IEC 9797-1 method 2 (80 00..), always added, because the
 * paper's zero padding cannot tell trailing zero bytes of the data from padding; and C is a 2-byte
 * command counter, 1 for the first command of the session, implicit on both sides, so a recorded
 * command replayed in the same session (or another session's command: other keys) fails its MAC.
 * Check MAC, then decrypt: nothing of an unauthenticated command is ever decrypted. Any secure
 * messaging error closes the session. Responses are not protected (none carries a secret).
 *
 * Keys: a card leaves the factory with a transport key set (version FF) in its install parameters,
 * as real cards ship with transport keys; PERSONALISE loads the issuer's master keys (version 01),
 * switches to them in the same transaction that personalises the card and then erases the transport
 * keys. The two sets live in separate key objects so that power lost in the middle of loading the
 * new keys leaves the old set in force.
 */
final class IssuerChannel implements WalletConstants {
    private static final byte SESSION_NONE = (byte) 0;
    private static final byte SESSION_CHALLENGED = (byte) 1;
    private static final byte SESSION_OPEN = (byte) 2;
    private static final short CHALLENGE = (short) 8;
    private static final short MAC = (short) 8;
    private static final short BLOCK = (short) 8;
    private static final short COUNTER_LIMIT = (short) 0x7FFF;
    /**
     * Failed EXTERNAL AUTHENTICATEs in a row before the issuer keys are blocked for good (6983): without a
     * limit anyone holding the card could try host cryptograms forever. A blocked card is replaced, as
     * GlobalPlatform cards lock themselves after too many failed authentications.
     */
    static final byte AUTHENTICATION_TRIES = (byte) 10;

    // layout of the session array (RAM)
    private static final short S_STATE = (short) 0;
    private static final short S_COUNTER = (short) 1;
    private static final short S_R1 = (short) 3; // host challenge
    private static final short S_R2 = (short) 11; // card challenge, right after r1: MAC(r1 ‖ r2) in one call
    private static final short S_SIZE = (short) 19;

    private final DESKey transportEnc;
    private final DESKey transportMac;
    private final DESKey issuerEnc;
    private final DESKey issuerMac;
    /** Which key set is in force; written in the personalisation transaction. */
    private byte keyVersion;
    /** [0] authentication tries left: one byte, so each update is a single atomic write. */
    private final byte[] tries;

    /** Session keys in RAM: gone on deselect or power loss, which closes the session. */
    private final DESKey sessionEnc;
    private final DESKey sessionMac;
    private final byte[] session;
    /** Derivation data and session key bytes; cleared after each use. */
    private final byte[] scratch;

    // Engines are created once: getInstance allocates, and allocation is for install time only.
    private final Cipher ecb;
    private final Cipher cbc;
    private final Signature mac;
    private final RandomData random;

    /** Install time: allocates everything and loads the transport keys (K_E ‖ K_A at keysOff). */
    IssuerChannel(byte[] keys, short keysOff) {
        transportEnc = (DESKey) KeyBuilder.buildKey(KeyBuilder.TYPE_DES, KeyBuilder.LENGTH_DES3_2KEY, false);
        transportMac = (DESKey) KeyBuilder.buildKey(KeyBuilder.TYPE_DES, KeyBuilder.LENGTH_DES3_2KEY, false);
        issuerEnc = (DESKey) KeyBuilder.buildKey(KeyBuilder.TYPE_DES, KeyBuilder.LENGTH_DES3_2KEY, false);
        issuerMac = (DESKey) KeyBuilder.buildKey(KeyBuilder.TYPE_DES, KeyBuilder.LENGTH_DES3_2KEY, false);
        sessionEnc = (DESKey) KeyBuilder.buildKey(KeyBuilder.TYPE_DES_TRANSIENT_DESELECT,
                KeyBuilder.LENGTH_DES3_2KEY, false);
        sessionMac = (DESKey) KeyBuilder.buildKey(KeyBuilder.TYPE_DES_TRANSIENT_DESELECT,
                KeyBuilder.LENGTH_DES3_2KEY, false);
        session = JCSystem.makeTransientByteArray(S_SIZE, JCSystem.CLEAR_ON_DESELECT);
        scratch = JCSystem.makeTransientByteArray((short) 32, JCSystem.CLEAR_ON_DESELECT);
        tries = new byte[1];
        tries[0] = AUTHENTICATION_TRIES;
        ecb = Cipher.getInstance(Cipher.ALG_DES_ECB_NOPAD, false);
        cbc = Cipher.getInstance(Cipher.ALG_DES_CBC_NOPAD, false);
        mac = Signature.getInstance(Signature.ALG_DES_MAC8_ISO9797_1_M2_ALG3, false);
        // ALG_SECURE_RANDOM / generateData: deprecated in 3.0.5 but the only pair 3.0.4 cards also have.
        random = RandomData.getInstance(RandomData.ALG_SECURE_RANDOM);
        transportEnc.setKey(keys, keysOff);
        transportMac.setKey(keys, (short) (keysOff + DES_KEY));
        keyVersion = KEY_VERSION_TRANSPORT;
    }

    byte keyVersion() {
        return keyVersion;
    }

    boolean isOpen() {
        return session[S_STATE] == SESSION_OPEN;
    }

    void close() {
        session[S_STATE] = SESSION_NONE;
        sessionEnc.clearKey();
        sessionMac.clearKey();
    }

    /**
     * Loads the issuer master keys (K_E at encOff, K_A at macOff) into their own key objects. They come
     * into force with {@link #switchToIssuerKeys}, which the caller runs in its transaction.
     */
    void loadIssuerKeys(byte[] src, short encOff, short macOff) {
        issuerEnc.setKey(src, encOff);
        issuerMac.setKey(src, macOff);
    }

    /** Puts the issuer keys in force: one field write, inside the caller's personalisation transaction. */
    void switchToIssuerKeys() {
        keyVersion = KEY_VERSION_ISSUER;
    }

    /** After the switch is committed: erases the transport keys and closes the session they opened. */
    void retireTransportKeys() {
        transportEnc.clearKey();
        transportMac.clearKey();
        close();
    }

    /** INITIALIZE UPDATE: P1 key version (00 = the one in force), data r1 (8); answers version ‖ r2 ‖ card cryptogram. */
    void initializeUpdate(APDU apdu) {
        byte[] buf = apdu.getBuffer();
        close();
        byte p1 = buf[ISO7816.OFFSET_P1];
        if (buf[ISO7816.OFFSET_P2] != 0) {
            ISOException.throwIt(ISO7816.SW_INCORRECT_P1P2);
        }
        if (p1 != 0 && p1 != keyVersion) {
            ISOException.throwIt(SW_REFERENCE_NOT_FOUND);
        }
        if (tries[0] == 0) {
            ISOException.throwIt(SW_AUTH_BLOCKED);
        }
        WalletApplet.receive(apdu, CHALLENGE);
        Util.arrayCopyNonAtomic(buf, ISO7816.OFFSET_CDATA, session, S_R1, CHALLENGE);
        random.generateData(session, S_R2, CHALLENGE);
        // R_d = r2[4..8] ‖ r1[0..4] ‖ r2[0..4] ‖ r1[4..8]
        Util.arrayCopyNonAtomic(session, (short) (S_R2 + 4), scratch, (short) 0, (short) 4);
        Util.arrayCopyNonAtomic(session, S_R1, scratch, (short) 4, (short) 4);
        Util.arrayCopyNonAtomic(session, S_R2, scratch, (short) 8, (short) 4);
        Util.arrayCopyNonAtomic(session, (short) (S_R1 + 4), scratch, (short) 12, (short) 4);
        boolean issuer = keyVersion == KEY_VERSION_ISSUER;
        derive(issuer ? issuerEnc : transportEnc, sessionEnc);
        derive(issuer ? issuerMac : transportMac, sessionMac);
        Util.arrayFillNonAtomic(scratch, (short) 0, (short) 32, (byte) 0);

        buf[0] = keyVersion;
        Util.arrayCopyNonAtomic(session, S_R2, buf, (short) 1, CHALLENGE);
        mac.init(sessionMac, Signature.MODE_SIGN);
        mac.sign(session, S_R1, (short) (2 * CHALLENGE), buf, (short) (1 + CHALLENGE));
        session[S_STATE] = SESSION_CHALLENGED;
        apdu.setOutgoingAndSend((short) 0, (short) (1 + CHALLENGE + MAC));
    }

    /** session key = 3DES-ECB(master, R_d), R_d in scratch[0..16]. */
    private void derive(DESKey master, DESKey sessionKey) {
        ecb.init(master, Cipher.MODE_ENCRYPT);
        ecb.doFinal(scratch, (short) 0, (short) 16, scratch, (short) 16);
        sessionKey.setKey(scratch, (short) 16);
    }

    /** EXTERNAL AUTHENTICATE: data host cryptogram (8). A challenge serves one attempt only. */
    void externalAuthenticate(APDU apdu) {
        byte[] buf = apdu.getBuffer();
        if (session[S_STATE] != SESSION_CHALLENGED) {
            close();
            ISOException.throwIt(ISO7816.SW_CONDITIONS_NOT_SATISFIED);
        }
        session[S_STATE] = SESSION_NONE;
        if (buf[ISO7816.OFFSET_P1] != 0 || buf[ISO7816.OFFSET_P2] != 0) {
            close();
            ISOException.throwIt(ISO7816.SW_INCORRECT_P1P2);
        }
        if (WalletApplet.receiveAny(apdu) != MAC) {
            close();
            ISOException.throwIt(ISO7816.SW_WRONG_LENGTH);
        }
        // The try is spent before the comparison (a committed one-byte write), so cutting the power
        // during the comparison does not give the attempt back.
        tries[0]--;
        mac.init(sessionMac, Signature.MODE_VERIFY);
        mac.update(session, S_R2, CHALLENGE);
        if (!mac.verify(session, S_R1, CHALLENGE, buf, ISO7816.OFFSET_CDATA, MAC)) {
            close();
            ISOException.throwIt(SW_AUTHENTICATION_FAILED);
        }
        tries[0] = AUTHENTICATION_TRIES;
        Util.setShort(session, S_COUNTER, (short) 0);
        session[S_STATE] = SESSION_OPEN;
    }

    /**
     * Unwraps a CLA 84 command in the APDU buffer: checks the session, the counter and the MAC, then
     * decrypts the data field in place and removes the padding. Returns the plaintext length (the
     * plaintext starts at OFFSET_CDATA). 6982 without a session; 6987 / 6988 for a missing or wrong
     * MAC, a replay or bad padding, which also close the session.
     */
    short unwrap(APDU apdu) {
        byte[] buf = apdu.getBuffer();
        short len = WalletApplet.receiveAny(apdu);
        if (!isOpen()) {
            ISOException.throwIt(ISO7816.SW_SECURITY_STATUS_NOT_SATISFIED);
        }
        if (len < (short) (BLOCK + MAC)) {
            close();
            ISOException.throwIt(SW_SM_MISSING);
        }
        short counter = Util.getShort(session, S_COUNTER);
        if ((short) (len % BLOCK) != 0 || counter == COUNTER_LIMIT) {
            close();
            ISOException.throwIt(SW_SM_INCORRECT);
        }
        counter++;
        short macOff = (short) (ISO7816.OFFSET_CDATA + len - MAC);
        Util.setShort(scratch, (short) 0, counter);
        mac.init(sessionMac, Signature.MODE_VERIFY);
        mac.update(scratch, (short) 0, (short) 2);
        if (!mac.verify(buf, (short) 0, macOff, buf, macOff, MAC)) {
            close();
            ISOException.throwIt(SW_SM_INCORRECT);
        }
        Util.setShort(session, S_COUNTER, counter);
        short cipherLen = (short) (len - MAC);
        cbc.init(sessionEnc, Cipher.MODE_DECRYPT);
        cbc.doFinal(buf, ISO7816.OFFSET_CDATA, cipherLen, buf, ISO7816.OFFSET_CDATA);
        // ISO/IEC 9797-1 padding method 2: the last 80 byte, followed only by zeros, within the last block
        short end = (short) (ISO7816.OFFSET_CDATA + cipherLen - 1);
        short stop = (short) (end - BLOCK);
        while (end > stop && buf[end] == 0) {
            end--;
        }
        if (end == stop || buf[end] != (byte) 0x80) {
            close();
            ISOException.throwIt(SW_SM_INCORRECT);
        }
        return (short) (end - ISO7816.OFFSET_CDATA);
    }
}
