package cardsuite.isoapplet;

import cardsuite.isocmd.FileSystem;
import cardsuite.isocmd.SecurityStatus;
import cardsuite.isofs.CyclicRecordFile;
import cardsuite.isofs.DedicatedFile;
import cardsuite.isofs.ISOFS;
import cardsuite.isofs.ISOFile;
import cardsuite.isofs.RecordFile;
import cardsuite.isofs.TransparentFile;
import cardsuite.isofs.VariableRecordFile;
import javacard.framework.AID;
import javacard.framework.APDU;
import javacard.framework.Applet;
import javacard.framework.ISO7816;
import javacard.framework.ISOException;
import javacard.framework.JCSystem;
import javacard.framework.Shareable;
import javacard.framework.Util;
import javacard.security.RandomData;

/**
 * The library's whole ISO 7816-4 command set over a small tree personalised at install (see
 * README.md), plus the PIN its access conditions refer to: VERIFY (00 20), CHANGE REFERENCE DATA
 * (00 24), RESET RETRY COUNTER (00 2C) with the PUK, and GET CHALLENGE (00 84). DF 6000 is shared
 * with applets of other packages through cardsuite.isocmd.SharedFiles (getShareableInterfaceObject,
 * parameter 00). The MF holds EF.DIR (2F00) and EF.ATR (2F01) for generic clients.
 *
 * Install parameters (application data, all optional): PIN length (4..8), PIN, then maximum file
 * count (1 byte) and maximum EF data bytes (2 bytes) of the tree, then the 8-byte PUK. Without them
 * the PIN is 31 32 33 34 ("1234"), the PUK 31 32 33 34 35 36 37 38 ("12345678"), test defaults, and
 * the limits are 24 files and 2048 bytes.
 */
public final class IsoApplet extends Applet implements SecurityStatus, IsoConstants {
    private static final byte[] DEFAULT_PIN = {0x31, 0x32, 0x33, 0x34};
    private static final byte[] DEFAULT_PUK = {0x31, 0x32, 0x33, 0x34, 0x35, 0x36, 0x37, 0x38};
    /** This applet's AID in the manifest: EF.DIR names it when the install gives no instance AID. */
    private static final byte[] DEFAULT_AID = {0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x20, 0x01};
    private static final byte[] LABEL_APP_AID = {'c', 'a', 'r', 'd', 's', 'u', 'i', 't', 'e', ' ', 'I', 'S', 'O'};
    private static final byte[] LABEL_APP = {'c', 'a', 'r', 'd', 's', 'u', 'i', 't', 'e', ' ', 'F', 'S'};
    private static final byte[] LABEL_SHARED = {'c', 'a', 'r', 'd', 's', 'u', 'i', 't', 'e', ' ', 's', 'h', 'a',
        'r', 'e', 'd'};
    /**
     * EF.ATR: card capabilities (tag 47, ISO 7816-4 "card capabilities"): DF selection by full and partial
     * name, path and FID, short EF identifiers and record numbers (F6); data coding byte 41 (WRITE is
     * an OR, one-byte units); no chaining, no extended lengths, one logical channel (00): the applet
     * is not multiselectable.
     */
    private static final byte[] EF_ATR = {0x47, 0x03, (byte) 0xF6, 0x41, 0x00};
    private static final byte[] NAME_APP = {(byte) 0xF0, 0x63, 0x61, 0x72, 0x64, 0x46, 0x53, 0x01};
    private static final byte[] NAME_SHARED = {(byte) 0xF0, 0x63, 0x61, 0x72, 0x64, 0x46, 0x53, 0x02};

    private final PinCode pin;
    /** The resetting code of RESET RETRY COUNTER. */
    private final PinCode puk;
    private final RandomData random;
    private final FileSystem files;
    /** The same tree seen from DF 6000, with card-session state: what other applets get. */
    private final FileSystem shared;

    /** aid: the instance AID (aidOff, aidLen) for EF.DIR, or null for DEFAULT_AID. */
    private IsoApplet(byte[] params, short off, byte len, byte[] aid, short aidOff, byte aidLen) {
        // Install parameters, validated before anything is allocated (6A80 fails the install).
        byte[] pinSource = DEFAULT_PIN;
        short pinOff = 0;
        byte pinLen = (byte) DEFAULT_PIN.length;
        byte[] pukSource = DEFAULT_PUK;
        short pukOff = 0;
        short maxFiles = DEFAULT_MAX_FILES;
        short maxBytes = DEFAULT_MAX_BYTES;
        if (len > 0) {
            pinLen = params[off];
            pinOff = (short) (off + 1);
            pinSource = params;
            short rest = (short) (len - 1 - pinLen);
            if (pinLen < PIN_MIN || pinLen > PIN_MAX
                    || (rest != 0 && rest != PARAMS_LIMITS && rest != PARAMS_LIMITS_PUK)) {
                ISOException.throwIt(ISO7816.SW_WRONG_DATA);
            }
            if (rest != 0) {
                short at = (short) (pinOff + pinLen);
                maxFiles = (short) (params[at] & 0xFF);
                maxBytes = Util.getShort(params, (short) (at + 1));
            }
            if (rest == PARAMS_LIMITS_PUK) {
                pukSource = params;
                pukOff = (short) (pinOff + pinLen + PARAMS_LIMITS);
            }
        }
        if (aid == null) {
            aid = DEFAULT_AID;
            aidOff = 0;
            aidLen = (byte) DEFAULT_AID.length;
        }
        pin = new PinCode(PIN_TRIES, PIN_MAX);
        pin.update(pinSource, pinOff, pinLen);
        puk = new PinCode(PUK_TRIES, PUK_LENGTH);
        puk.update(pukSource, pukOff, PUK_LENGTH);
        random = RandomData.getInstance(RandomData.ALG_SECURE_RANDOM);

        DedicatedFile mf = new DedicatedFile(ISOFS.FID_MF, null, (short) 0, (byte) 0);
        protectDF(mf);
        DedicatedFile app = new DedicatedFile(FID_DF_APP, NAME_APP, (short) 0, (byte) NAME_APP.length);
        protectDF(app);
        mf.addChild(app);
        addEF(app, new TransparentFile(FID_EF_BINARY, (byte) 1, (short) 128), ISOFS.AC_ALWAYS);
        addEF(app, new RecordFile(FID_EF_FIXED, (byte) 2, (short) 16, (byte) 6), ISOFS.AC_ALWAYS);
        addEF(app, new VariableRecordFile(FID_EF_VARIABLE, (byte) 3, (short) 32, (short) 100), ISOFS.AC_ALWAYS);
        addEF(app, new CyclicRecordFile(FID_EF_CYCLIC, (byte) 4, (short) 8, (byte) 4), ISOFS.AC_ALWAYS);
        TransparentFile secret = new TransparentFile(FID_EF_SECRET, (byte) 5, (short) 16);
        secret.setAccess(PIN_REF, PIN_REF, ISOFS.AC_NEVER, PIN_REF, PIN_REF);
        app.addChild(secret);

        DedicatedFile share = new DedicatedFile(FID_DF_SHARED, NAME_SHARED, (short) 0, (byte) NAME_SHARED.length);
        protectDF(share);
        mf.addChild(share);
        addEF(share, new TransparentFile(FID_EF_SHARED_BINARY, (byte) 1, (short) 32), PIN_REF);
        addEF(share, new CyclicRecordFile(FID_EF_SHARED_CYCLIC, (byte) 2, (short) 16, (byte) 4), PIN_REF);

        // EF.DIR and EF.ATR for generic clients: read always, the rest with the PIN.
        VariableRecordFile dir = new VariableRecordFile(FID_EF_DIR, SFI_EF_DIR, EF_DIR_RECORD_MAX, EF_DIR_BUDGET);
        byte[] scratch = new byte[EF_DIR_RECORD_MAX]; // install only: the templates are built once
        dir.appendRecord(scratch, (short) 0, application(scratch, aid, aidOff, aidLen, LABEL_APP_AID));
        dir.appendRecord(scratch, (short) 0, application(scratch, NAME_APP, (short) 0, (byte) NAME_APP.length,
                LABEL_APP));
        dir.appendRecord(scratch, (short) 0, application(scratch, NAME_SHARED, (short) 0,
                (byte) NAME_SHARED.length, LABEL_SHARED));
        addProtectedEF(mf, dir);
        TransparentFile atr = new TransparentFile(FID_EF_ATR, SFI_EF_ATR, (short) EF_ATR.length);
        atr.updateBinary((short) 0, EF_ATR, (short) 0, (short) EF_ATR.length);
        addProtectedEF(mf, atr);

        files = new FileSystem(mf, this, maxFiles, maxBytes, JCSystem.CLEAR_ON_DESELECT);
        shared = new FileSystem(share, this, maxFiles, maxBytes, JCSystem.CLEAR_ON_RESET);
    }

    /**
     * bArray: the Java Card install layout (AID length, AID, control length, control, data length,
     * data). Empty (some simulators pass nothing): default parameters and the AID of the load.
     */
    public static void install(byte[] bArray, short bOffset, byte bLength) {
        if (bLength == 0) {
            new IsoApplet(bArray, bOffset, (byte) 0, null, (short) 0, (byte) 0).register();
            return;
        }
        short aidOff = (short) (bOffset + 1);
        short at = (short) (aidOff + bArray[bOffset]);
        at = (short) (at + bArray[at] + 1);
        new IsoApplet(bArray, (short) (at + 1), bArray[at], bArray, aidOff, bArray[bOffset]).register(bArray,
                aidOff, bArray[bOffset]);
    }

    /** Writes the EF.DIR record 61 { 4F id, 50 label } into dst; returns its length. */
    private static short application(byte[] dst, byte[] id, short idOff, byte idLen, byte[] label) {
        dst[0] = TAG_APPLICATION_TEMPLATE;
        dst[1] = (byte) (4 + idLen + label.length);
        dst[2] = TAG_APPLICATION_ID;
        dst[3] = idLen;
        short off = Util.arrayCopyNonAtomic(id, idOff, dst, (short) 4, idLen);
        dst[off++] = TAG_APPLICATION_LABEL;
        dst[off++] = (byte) label.length;
        return Util.arrayCopyNonAtomic(label, (short) 0, dst, off, (short) label.length);
    }

    /** DF conditions: creating, deleting and the life cycle need the PIN. */
    private static void protectDF(DedicatedFile df) {
        df.setAccess(ISOFS.AC_NEVER, ISOFS.AC_NEVER, PIN_REF, PIN_REF, PIN_REF);
    }

    /** EF conditions: read and append always, update as given, delete and life cycle need the PIN. */
    private static void addEF(DedicatedFile df, ISOFile ef, byte update) {
        ef.setAccess(ISOFS.AC_ALWAYS, update, ISOFS.AC_ALWAYS, PIN_REF, PIN_REF);
        df.addChild(ef);
    }

    /** EF.DIR / EF.ATR conditions: read always, everything else needs the PIN. */
    private static void addProtectedEF(DedicatedFile df, ISOFile ef) {
        ef.setAccess(ISOFS.AC_ALWAYS, PIN_REF, PIN_REF, PIN_REF, PIN_REF);
        df.addChild(ef);
    }

    public boolean isSatisfied(byte reference) {
        return reference == PIN_REF && pin.isVerified();
    }

    public Shareable getShareableInterfaceObject(AID clientAID, byte parameter) {
        return parameter == SHARED_FILES ? shared : null;
    }

    public void process(APDU apdu) {
        if (selectingApplet()) {
            files.selectApplication(apdu); // the FCI of the application, for generic clients
            return;
        }
        byte[] buf = apdu.getBuffer();
        checkClass(buf[ISO7816.OFFSET_CLA]);
        switch (buf[ISO7816.OFFSET_INS]) {
            case INS_VERIFY:
                verify(apdu, buf);
                return;
            case INS_CHANGE_REFERENCE_DATA:
                changeReferenceData(apdu, buf);
                return;
            case INS_RESET_RETRY_COUNTER:
                resetRetryCounter(apdu, buf);
                return;
            case INS_GET_CHALLENGE:
                getChallenge(apdu, buf);
                return;
            default:
                if (!files.process(apdu)) {
                    ISOException.throwIt(ISO7816.SW_INS_NOT_SUPPORTED);
                }
        }
    }

    /**
     * VERIFY (ISO 7816-4 7.5.6), P2 01: P1 00 with the PIN → 9000, or 63Cx (x tries left, 63C0 on
     * the try that blocks), 6983 once blocked; P1 00 without data → 9000 when verified, else 63Cx
     * (6983 blocked); P1 FF → forget the verification. 6A86 for other P1, 6A88 for other P2, 6700
     * for a PIN not 4..8 bytes. The try is spent before the comparison (PinCode.check).
     */
    private void verify(APDU apdu, byte[] buf) {
        checkReference(buf);
        byte p1 = buf[ISO7816.OFFSET_P1];
        short len = apdu.setIncomingAndReceive();
        if (p1 == VERIFY_P1_RESET && len == 0) {
            pin.forget();
            return;
        }
        if (p1 != 0) {
            ISOException.throwIt(ISO7816.SW_INCORRECT_P1P2);
        }
        if (len == 0) {
            if (!pin.isVerified()) {
                pin.throwStatus();
            }
            return;
        }
        checkPinLength(len);
        if (!pin.check(buf, ISO7816.OFFSET_CDATA, (byte) len)) {
            pin.throwFailed();
        }
    }

    /**
     * The interindustry classes (ISO 7816-4 5.4.1) with any channel bits: the runtime delivers this
     * applet only the commands of the channel it is selected on, so another channel (a runtime without
     * logical channels passing them through) is 6881. 6882 for secure messaging, 6884 for chaining
     * (neither is supported), 6E00 for proprietary and RFU classes.
     */
    private static void checkClass(byte cla) {
        if ((cla & CLA_PROPRIETARY) != 0 || (cla & CLA_KIND) == CLA_KIND_RFU) {
            ISOException.throwIt(ISO7816.SW_CLA_NOT_SUPPORTED);
        }
        if ((cla & ((cla & CLA_FURTHER) != 0 ? CLA_FURTHER_SM : CLA_FIRST_SM)) != 0) {
            ISOException.throwIt(ISO7816.SW_SECURE_MESSAGING_NOT_SUPPORTED);
        }
        if ((cla & CLA_CHAINING) != 0) {
            ISOException.throwIt(ISO7816.SW_COMMAND_CHAINING_NOT_SUPPORTED);
        }
        if (APDU.getCLAChannel() != JCSystem.getAssignedChannel()) {
            ISOException.throwIt(ISO7816.SW_LOGICAL_CHANNEL_NOT_SUPPORTED);
        }
    }

    /**
     * CHANGE REFERENCE DATA (7.5.7), P2 01. P1 01: the data is the new PIN (4..8 bytes) and the PIN
     * must be verified (6982 otherwise). P1 00: the current PIN then the new one, split after the
     * current PIN's length; the current one is checked like VERIFY (a try spent first, 63Cx / 6983),
     * whatever the total length within 8..16 bytes, so that 6700 never tells the PIN's length; a
     * right PIN followed by a new one not 4..8 bytes is 6700 (nothing verified, nothing changed).
     * After a change the PIN must be verified again.
     */
    private void changeReferenceData(APDU apdu, byte[] buf) {
        checkReference(buf);
        byte p1 = buf[ISO7816.OFFSET_P1];
        if (p1 != CHANGE_P1_NEW_ONLY && p1 != CHANGE_P1_OLD_AND_NEW) {
            ISOException.throwIt(ISO7816.SW_INCORRECT_P1P2);
        }
        short len = apdu.setIncomingAndReceive();
        short newOff = ISO7816.OFFSET_CDATA;
        if (p1 == CHANGE_P1_OLD_AND_NEW) {
            if (len < (short) (2 * PIN_MIN) || len > (short) (2 * PIN_MAX)) {
                ISOException.throwIt(ISO7816.SW_WRONG_LENGTH);
            }
            byte oldLen = pin.length();
            if (!pin.check(buf, ISO7816.OFFSET_CDATA, oldLen)) {
                pin.throwFailed();
            }
            newOff += oldLen;
            len -= oldLen;
            if (len < PIN_MIN || len > PIN_MAX) {
                pin.forget();
                ISOException.throwIt(ISO7816.SW_WRONG_LENGTH);
            }
        } else {
            checkPinLength(len);
            if (!pin.isVerified()) {
                ISOException.throwIt(ISO7816.SW_SECURITY_STATUS_NOT_SATISFIED);
            }
        }
        JCSystem.beginTransaction();
        pin.update(buf, newOff, (byte) len);
        JCSystem.commitTransaction();
    }

    /**
     * RESET RETRY COUNTER (7.5.10), P2 01: P1 00 the PUK (8 bytes) then a new PIN (4..8 bytes), P1 01
     * the PUK alone; the PIN's tries are restored (and the PIN replaced), the PIN left unverified. The
     * PUK is checked like a PIN: a try spent first, 63Cx wrong (x PUK tries left), 6983 once blocked
     * (for good). 6700 for a data length other than these, 6A86 for P1 02 / 03 (no other way to
     * authorise a reset here).
     */
    private void resetRetryCounter(APDU apdu, byte[] buf) {
        checkReference(buf);
        byte p1 = buf[ISO7816.OFFSET_P1];
        if (p1 != RESET_P1_PUK_AND_NEW && p1 != RESET_P1_PUK_ONLY) {
            ISOException.throwIt(ISO7816.SW_INCORRECT_P1P2);
        }
        short len = (short) (apdu.setIncomingAndReceive() - PUK_LENGTH);
        if (p1 == RESET_P1_PUK_ONLY ? len != 0 : len < PIN_MIN || len > PIN_MAX) {
            ISOException.throwIt(ISO7816.SW_WRONG_LENGTH);
        }
        if (!puk.check(buf, ISO7816.OFFSET_CDATA, PUK_LENGTH)) {
            puk.throwFailed();
        }
        puk.forget();
        JCSystem.beginTransaction();
        if (p1 == RESET_P1_PUK_AND_NEW) {
            pin.update(buf, (short) (ISO7816.OFFSET_CDATA + PUK_LENGTH), (byte) len);
        } else {
            pin.restoreTries();
        }
        JCSystem.commitTransaction();
    }

    /**
     * GET CHALLENGE (7.5.3): P1-P2 00 00, Le bytes from the card's secure random generator (Le 00:
     * 256). 6A86 other P1-P2, 6700 Le absent. Nothing keeps the challenge: no command here checks one.
     */
    private void getChallenge(APDU apdu, byte[] buf) {
        if (Util.getShort(buf, ISO7816.OFFSET_P1) != 0) {
            ISOException.throwIt(ISO7816.SW_INCORRECT_P1P2);
        }
        short ne = apdu.setOutgoing();
        if (ne == 0) {
            ISOException.throwIt(ISO7816.SW_WRONG_LENGTH);
        }
        if (ne > CHALLENGE_MAX) {
            ne = CHALLENGE_MAX;
        }
        random.generateData(buf, (short) 0, ne);
        apdu.setOutgoingLength(ne);
        apdu.sendBytes((short) 0, ne);
    }

    private static void checkReference(byte[] buf) {
        if (buf[ISO7816.OFFSET_P2] != PIN_REF) {
            ISOException.throwIt(SW_REFERENCE_NOT_FOUND);
        }
    }

    private static void checkPinLength(short len) {
        if (len < PIN_MIN || len > PIN_MAX) {
            ISOException.throwIt(ISO7816.SW_WRONG_LENGTH);
        }
    }
}
