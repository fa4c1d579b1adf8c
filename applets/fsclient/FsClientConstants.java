package cardsuite.fsclient;

/**
 * Where the shared files live: the getShareableInterfaceObject parameter of the ISO applet (its AID,
 * an array, is FsClientApplet.OWNER_AID: interfaces hold only primitive constants).
 */
public interface FsClientConstants {
    byte SHARED_FILES = 0;
}
