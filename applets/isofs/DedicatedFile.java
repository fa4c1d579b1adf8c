package cardsuite.isofs;

import javacard.framework.ISOException;
import javacard.framework.Util;

/**
 * A DF (the MF is the DF with identifier 3F00 at the top of a tree). Children form a singly linked
 * list in creation order, so a DF costs no array and has no fixed child count.
 */
public class DedicatedFile extends ISOFile {
    /** DF name (an AID or other name, 1..16 bytes), or null. */
    byte[] name;
    ISOFile firstChild;

    /** A DF; name may be null (then nameOff and nameLen are ignored). Allocates the name once. */
    public DedicatedFile(short fid, byte[] name, short nameOff, byte nameLen) {
        super(fid, (byte) 0, ISOFS.FDB_DF, (short) 0);
        if (name != null) {
            this.name = new byte[nameLen];
            Util.arrayCopy(name, nameOff, this.name, (short) 0, nameLen);
        }
    }

    /** The DF name (the array itself), or null. */
    public byte[] getName() {
        return name;
    }

    /** The first child in creation order, or null. */
    public ISOFile getFirstChild() {
        return firstChild;
    }

    /** The child with this file identifier, or null. */
    public ISOFile findChild(short id) {
        ISOFile f = firstChild;
        while (f != null && f.fid != id) {
            f = f.sibling;
        }
        return f;
    }

    /** The child EF with this short EF identifier (1..30), or null. */
    public ISOFile findSFI(byte id) {
        ISOFile f = firstChild;
        while (f != null && (f.sfi != id || id == 0)) {
            f = f.sibling;
        }
        return f;
    }

    /**
     * Links a new file as the last child (one transaction). Status 6A89 when a child already has its
     * file identifier or short EF identifier. DF names are not checked here (the command processor checks them
     * for CREATE FILE).
     */
    public void addChild(ISOFile f) {
        if (findChild(f.fid) != null || findSFI(f.sfi) != null || f.fid == fid) {
            ISOException.throwIt(ISOFS.SW_FILE_EXISTS);
        }
        boolean own = beginAtomic();
        f.parent = this;
        if (firstChild == null) {
            firstChild = f;
        } else {
            ISOFile last = firstChild;
            while (last.sibling != null) {
                last = last.sibling;
            }
            last.sibling = f;
        }
        endAtomic(own);
    }

    /** Unlinks a child (and with it its subtree); marks every file of the subtree LCS_DELETED. */
    public void removeChild(ISOFile f) {
        boolean own = beginAtomic();
        if (firstChild == f) {
            firstChild = f.sibling;
        } else {
            ISOFile prev = firstChild;
            while (prev.sibling != f) {
                prev = prev.sibling;
            }
            prev.sibling = f.sibling;
        }
        for (ISOFile g = f; g != null; g = next(g, f)) {
            g.lcs = ISOFS.LCS_DELETED;
        }
        f.sibling = null;
        f.parent = null;
        endAtomic(own);
    }
}
