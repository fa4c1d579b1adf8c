package cardsuite.simtest.server;

import javacard.framework.AID;
import javacard.framework.APDU;
import javacard.framework.Applet;
import javacard.framework.ISO7816;
import javacard.framework.ISOException;
import javacard.framework.JCSystem;
import javacard.framework.Shareable;

/**
 * Bridge test applet for the firewall: shares a {@link Service} with any client (parameter 00), and records what
 * its getShareableInterfaceObject saw of the contexts. No commands of its own.
 */
public class ServerApplet extends Applet implements Service {
    private static final byte PARAMETER = 0;
    private final byte[] secret = new byte[4];
    private AID me;
    private AID lastClient;
    private boolean sawClientAsPrevious;
    private boolean sawItselfAsCurrent;

    public static void install(byte[] bArray, short bOffset, byte bLength) {
        ServerApplet applet = new ServerApplet();
        applet.register(bArray, (short) (bOffset + 1), bArray[bOffset]);
        applet.me = JCSystem.lookupAID(bArray, (short) (bOffset + 1), bArray[bOffset]);
    }

    public Shareable getShareableInterfaceObject(AID clientAID, byte parameter) {
        lastClient = clientAID;
        sawClientAsPrevious = clientAID != null && clientAID.equals(JCSystem.getPreviousContextAID());
        sawItselfAsCurrent = me.equals(JCSystem.getAID());
        return parameter == PARAMETER ? this : null;
    }

    public short contexts(byte[] buffer, short offset) {
        buffer[offset] = (byte) ((sawClientAsPrevious ? 1 : 0) | (sawItselfAsCurrent ? 2 : 0));
        AID previous = JCSystem.getPreviousContextAID();
        buffer[(short) (offset + 1)] = previous != null && previous.equals(lastClient) ? (byte) 1 : 0;
        buffer[(short) (offset + 2)] = me.equals(JCSystem.getAID()) ? (byte) 1 : 0;
        return 3;
    }

    public byte[] leak() {
        return secret;
    }

    public byte take(byte[] array) {
        return array[0];
    }

    public void process(APDU apdu) {
        if (!selectingApplet()) {
            ISOException.throwIt(ISO7816.SW_INS_NOT_SUPPORTED);
        }
    }
}
