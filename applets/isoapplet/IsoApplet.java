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

/**
 * The library's whole ISO 7816-4 command set over a small tree personalised at install (see
 * README.md), plus the PIN its access conditions refer to: VERIFY (00 20) and CHANGE REFERENCE
 * DATA (00 24). DF 6000 is shared with applets of other packages through
 * cardsuite.isocmd.SharedFiles (getShareableInterfaceObject, parameter 00).
 *
 * Install parameters (application data, all optional): PIN length (4..8), PIN, then maximum file
 * count (1 byte) and maximum EF data bytes (2 bytes) of the tree. Without them the PIN is
 * 31 32 33 34 ("1234", a test default) and the limits are 24 files and 2048 bytes.
 */
public final class IsoApplet extends Applet implements SecurityStatus, IsoConstants {
    private static final byte[] DEFAULT_PIN = {0x31, 0x32, 0x33, 0x34};
    private static final byte[] NAME_APP = {(byte) 0xF0, 0x63, 0x61, 0x72, 0x64, 0x46, 0x53, 0x01};
    private static final byte[] NAME_SHARED = {(byte) 0xF0, 0x63, 0x61, 0x72, 0x64, 0x46, 0x53, 0x02};

    private final PinCode pin;
    private final FileSystem files;
    /** The same tree seen from DF 6000, with card-session state: what other applets get. */
    private final FileSystem shared;

    private IsoApplet(byte[] params, short off, byte len) {
        // Install parameters, validated before anything is allocated (6A80 fails the install).
        byte[] pinSource = DEFAULT_PIN;
        short pinOff = 0;
        byte pinLen = (byte) DEFAULT_PIN.length;
        short maxFiles = DEFAULT_MAX_FILES;
        short maxBytes = DEFAULT_MAX_BYTES;
        if (len > 0) {
            pinLen = params[off];
            pinOff = (short) (off + 1);
            pinSource = params;
            short rest = (short) (len - 1 - pinLen);
            if (pinLen < PIN_MIN || pinLen > PIN_MAX || (rest != 0 && rest != 3)) {
                ISOException.throwIt(ISO7816.SW_WRONG_DATA);
            }
            if (rest == 3) {
                short at = (short) (pinOff + pinLen);
                maxFiles = (short) (params[at] & 0xFF);
                maxBytes = Util.getShort(params, (short) (at + 1));
            }
        }
        pin = new PinCode(PIN_TRIES, PIN_MAX);
        pin.update(pinSource, pinOff, pinLen);

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

        files = new FileSystem(mf, this, maxFiles, maxBytes, JCSystem.CLEAR_ON_DESELECT);
        shared = new FileSystem(share, this, maxFiles, maxBytes, JCSystem.CLEAR_ON_RESET);
    }

    /**
     * bArray: the Java Card install layout (AID length, AID, control length, control, data length,
     * data). Empty (some simulators pass nothing): default parameters and the AID of the load.
     */
    public static void install(byte[] bArray, short bOffset, byte bLength) {
        if (bLength == 0) {
            new IsoApplet(bArray, bOffset, (byte) 0).register();
            return;
        }
        short at = (short) (bOffset + bArray[bOffset] + 1);
        at = (short) (at + bArray[at] + 1);
        new IsoApplet(bArray, (short) (at + 1), bArray[at]).register(bArray, (short) (bOffset + 1),
                bArray[bOffset]);
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

    public boolean isSatisfied(byte reference) {
        return reference == PIN_REF && pin.isVerified();
    }

    public Shareable getShareableInterfaceObject(AID clientAID, byte parameter) {
        return parameter == SHARED_FILES ? shared : null;
    }

    public void process(APDU apdu) {
        if (selectingApplet()) {
            return;
        }
        byte[] buf = apdu.getBuffer();
        if (buf[ISO7816.OFFSET_CLA] != 0) {
            ISOException.throwIt(ISO7816.SW_CLA_NOT_SUPPORTED);
        }
        switch (buf[ISO7816.OFFSET_INS]) {
            case INS_VERIFY:
                verify(apdu, buf);
                return;
            case INS_CHANGE_REFERENCE_DATA:
                changeReferenceData(apdu, buf);
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
     * CHANGE REFERENCE DATA (7.5.7), P1 01 P2 01: the data is the new PIN (4..8 bytes) and the PIN
     * must be verified (6982 otherwise). 6A86 for other P1 (old PIN in the data is not supported).
     */
    private void changeReferenceData(APDU apdu, byte[] buf) {
        checkReference(buf);
        if (buf[ISO7816.OFFSET_P1] != CHANGE_P1_NEW_ONLY) {
            ISOException.throwIt(ISO7816.SW_INCORRECT_P1P2);
        }
        short len = apdu.setIncomingAndReceive();
        checkPinLength(len);
        if (!pin.isVerified()) {
            ISOException.throwIt(ISO7816.SW_SECURITY_STATUS_NOT_SATISFIED);
        }
        JCSystem.beginTransaction();
        pin.update(buf, ISO7816.OFFSET_CDATA, (byte) len);
        JCSystem.commitTransaction();
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
