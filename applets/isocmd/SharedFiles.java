package cardsuite.isocmd;

import javacard.framework.APDU;
import javacard.framework.Shareable;

/**
 * Files of one applet offered to applets of other packages through the Java Card firewall. The
 * owner returns an object implementing it (a FileSystem rooted at the DF it shares, built with
 * JCSystem.CLEAR_ON_RESET state) from Applet.getShareableInterfaceObject; a client obtains it with
 * JCSystem.getAppletShareableInterfaceObject(ownerAID, parameter). Calls run in the owner's context,
 * so the owner's access conditions and life cycle apply, and only the global APDU buffer passes.
 */
public interface SharedFiles extends Shareable {
    /**
     * Processes one ISO 7816-4 file command (the set FileSystem.process handles) against the shared
     * DF, which acts as the MF of the client's view. Returns false, sending nothing, when INS is not
     * a file command.
     */
    boolean process(APDU apdu);
}
