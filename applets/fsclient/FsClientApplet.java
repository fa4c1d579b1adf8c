package cardsuite.fsclient;

import cardsuite.isocmd.SharedFiles;
import javacard.framework.AID;
import javacard.framework.APDU;
import javacard.framework.Applet;
import javacard.framework.ISO7816;
import javacard.framework.ISOException;
import javacard.framework.JCSystem;

/**
 * A client of files another applet owns: every ISO 7816-4 file command it receives (CLA 00) goes to
 * the ISO applet's shared DF (6000) through cardsuite.isocmd.SharedFiles. The calls cross the Java
 * Card firewall into the owner's context, so the owner's access conditions, life cycle and PIN
 * state apply; the client holds no file and no PIN. In the client's view the shared DF is the MF:
 * SELECT 3F00 selects it, EF 6001 and 6002 are its children.
 *
 * 6E00 for CLA not 00; 6A82 when the owner is not installed or refuses the interface; 6D00 for an
 * INS that is not a file command; every other status word is the owner's.
 */
public final class FsClientApplet extends Applet implements FsClientConstants {
    /** AID of cardsuite.isoapplet.IsoApplet, the owner of the shared DF. */
    private static final byte[] OWNER_AID = {0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x20, 0x01};

    private SharedFiles files;

    private FsClientApplet() {
        register();
    }

    public static void install(byte[] bArray, short bOffset, byte bLength) {
        new FsClientApplet();
    }

    public void process(APDU apdu) {
        if (selectingApplet()) {
            return;
        }
        if (apdu.getBuffer()[ISO7816.OFFSET_CLA] != 0) {
            ISOException.throwIt(ISO7816.SW_CLA_NOT_SUPPORTED);
        }
        if (!owner().process(apdu)) {
            ISOException.throwIt(ISO7816.SW_INS_NOT_SUPPORTED);
        }
    }

    /** The owner's shared files, looked up once (the reference is kept; no allocation). */
    private SharedFiles owner() {
        if (files == null) {
            AID aid = JCSystem.lookupAID(OWNER_AID, (short) 0, (byte) OWNER_AID.length);
            if (aid != null) {
                files = (SharedFiles) JCSystem.getAppletShareableInterfaceObject(aid, SHARED_FILES);
            }
            if (files == null) {
                ISOException.throwIt(ISO7816.SW_FILE_NOT_FOUND);
            }
        }
        return files;
    }
}
