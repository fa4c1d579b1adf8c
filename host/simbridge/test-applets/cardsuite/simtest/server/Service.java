package cardsuite.simtest.server;

import javacard.framework.Shareable;

/** What ServerApplet shares with applets of other packages (bridge firewall tests). */
public interface Service extends Shareable {
    /**
     * Writes three flags into {@code buffer} (a global array: the APDU buffer): whether the server's
     * getShareableInterfaceObject saw the client as the previous context and itself as the current one, and
     * whether this call sees the same. Returns 3.
     */
    short contexts(byte[] buffer, short offset);

    /** Returns the server's own persistent array: the client may not touch it (JCRE 6.2). */
    byte[] leak();

    /** Takes an array of the caller's: the server may not touch it unless it is global (JCRE 6.2.8.6). */
    byte take(byte[] array);
}
