// Darcy domain of the LoGoS-GPO data set: the triangle (0,0), (1,0), (0.5,1) with a rectangular
// notch cut from the middle of its base (x in [0.45, 0.55], y in [0, 0.4]). The paper does not
// give the notch's size; this is our choice. Physical curve 1: the whole boundary; surface 1.
h = 0.02;
Point(1) = {0, 0, 0, h};
Point(2) = {0.45, 0, 0, h};
Point(3) = {0.45, 0.4, 0, h / 2};
Point(4) = {0.55, 0.4, 0, h / 2};
Point(5) = {0.55, 0, 0, h};
Point(6) = {1, 0, 0, h};
Point(7) = {0.5, 1, 0, h};
Line(1) = {1, 2};
Line(2) = {2, 3};
Line(3) = {3, 4};
Line(4) = {4, 5};
Line(5) = {5, 6};
Line(6) = {6, 7};
Line(7) = {7, 1};
Curve Loop(1) = {1, 2, 3, 4, 5, 6, 7};
Plane Surface(1) = {1};
Physical Curve(1) = {1, 2, 3, 4, 5, 6, 7};
Physical Surface(1) = {1};
